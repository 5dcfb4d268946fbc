#!/usr/bin/env bash
# Makes assets/sample_keywords.wav: four keywords spoken by espeak-ng with pauses, 16 kHz mono
# 16-bit, and assets/sample_keywords.txt with where each word is (word, start s, end s).
#   scripts/make_sample_wav.sh [OUT_WAV]
set -euo pipefail
OUT=${1:-assets/sample_keywords.wav}
TXT="${OUT%.wav}.txt"
WORDS="yes stop left go"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
parts=()
t=0
: > "$TXT.tmp"
sil() { sox -q -n -r 16000 -c 1 -b 16 "$1" trim 0 "$2"; }
sil "$tmp/lead.wav" 1.0; parts+=("$tmp/lead.wav"); t=1.0
i=0
for w in $WORDS; do
  espeak-ng -v en-us -s 150 -p 50 -w "$tmp/raw$i.wav" "$w"
  # 16 kHz, leading/trailing silence trimmed: the word occupies exactly this segment.
  sox -q "$tmp/raw$i.wav" -r 16000 -c 1 -b 16 "$tmp/w$i.wav" silence 1 0.01 0.5% reverse silence 1 0.01 0.5% reverse
  d=$(soxi -D "$tmp/w$i.wav")
  printf '%s %.3f %.3f\n' "$w" "$t" "$(echo "$t + $d" | bc -l)" >> "$TXT.tmp"
  sil "$tmp/gap$i.wav" 1.5
  parts+=("$tmp/w$i.wav" "$tmp/gap$i.wav")
  t=$(echo "$t + $d + 1.5" | bc -l)
  i=$((i + 1))
done
sox -q "${parts[@]}" -r 16000 -c 1 -b 16 "$OUT"
mv "$TXT.tmp" "$TXT"
echo "wrote $OUT ($(soxi -D "$OUT") s) and $TXT"
