#!/usr/bin/env bash
# Synthesizes extra training speech in the Speech Commands layout with espeak-ng and flite:
# many voices x variants x speeds x pitches, 16 kHz mono 16-bit WAV, deterministic (seeded).
#
#   scripts/synth_speech.sh OUT_DIR [SEED]        (default OUT_DIR=/work/cache/synth-v3, SEED=1)
#
# Writes OUT_DIR/<keyword>/<voice>_nohash_<n>.wav and OUT_DIR/_unknown_/<word>_<voice>_nohash_<n>.wav
# (near-<word>_<voice>_nohash_<n>.wav for the words that sound like a keyword)
# ("<voice>" is the speaker id, so a speaker split keeps each synthetic voice on one side).
# The output is a cache: never commit it. Needs espeak-ng, flite and sox.
set -euo pipefail
OUT=${1:-/work/cache/synth-v3}
SEED=${2:-1}
RANDOM=$SEED
for tool in espeak-ng flite sox; do
  command -v "$tool" >/dev/null || { echo "synth_speech.sh: $tool not found (apt-get install espeak-ng flite sox)" >&2; exit 1; }
done
KEYWORDS="yes no up down left right on off stop go"
UNKNOWN="backward bed bird cat dog eight five follow forward four happy house learn marvin nine one seven sheila six three tree two visual wow zero"
# Words that sound like a keyword or hold one (not keywords themselves): a command detector
# must tell them apart.
NEAR="yet yeah yellow yesterday know now note nope nobody noon cup upper upon dune town done gown download lift loft light laughed write ride bright righteous own onto honest often office awful coffee stock stuff stopped stopping top go-cart goat ago going golf though"
ACCENTS="en-us en-gb en-gb-scotland en-gb-x-gbclan en-gb-x-rp en-gb-x-gbcwmd en-029 en-us-nyc"
VARIANTS="m1 m2 m3 m4 m5 m6 m7 f1 f2 f3 f4 f5 klatt klatt2 klatt3 croak whisper"
FLITE_VOICES="kal awb rms slt kal16"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$OUT/_unknown_"
for k in $KEYWORDS; do mkdir -p "$OUT/$k"; done
n=0
to16k() { sox -q "$1" -r 16000 -c 1 -b 16 "$2" 2>/dev/null; }
say_espeak() { # voice speed pitch word out
  espeak-ng -v "$1" -s "$2" -p "$3" -w "$tmp/e.wav" "$4" && to16k "$tmp/e.wav" "$5"
}
say_flite() { # voice word out
  flite -voice "$1" -t "$2" -o "$tmp/f.wav" && to16k "$tmp/f.wav" "$3"
}
pick_unknown() { local a=($UNKNOWN); echo "${a[$((RANDOM % ${#a[@]}))]}"; }
for acc in $ACCENTS; do
  for var in $VARIANTS; do
    speed=$((110 + RANDOM % 90)); pitch=$((20 + RANDOM % 60))
    voice="esp-$acc-$var"
    for k in $KEYWORDS; do say_espeak "$acc+$var" "$speed" "$pitch" "$k" "$OUT/$k/${voice}_nohash_0.wav"; done
    for i in 0 1; do w=$(pick_unknown); say_espeak "$acc+$var" "$speed" "$pitch" "$w" "$OUT/_unknown_/${w}_${voice}_nohash_$i.wav"; done
    n=$((n + 1))
  done
done
for v in $FLITE_VOICES; do
  voice="flite-$v"
  for k in $KEYWORDS; do say_flite "$v" "$k" "$OUT/$k/${voice}_nohash_0.wav"; done
  for i in 0 1 2 3 4 5; do w=$(pick_unknown); say_flite "$v" "$w" "$OUT/_unknown_/${w}_${voice}_nohash_$i.wav"; done
  n=$((n + 1))
done
pick_near() { local a=($NEAR); echo "${a[$((RANDOM % ${#a[@]}))]}"; }
for acc in $ACCENTS; do
  for var in $VARIANTS; do
    speed=$((110 + RANDOM % 90)); pitch=$((20 + RANDOM % 60))
    voice="esp-$acc-$var"
    for i in 0 1 2; do w=$(pick_near); say_espeak "$acc+$var" "$speed" "$pitch" "$w" "$OUT/_unknown_/near-${w}_${voice}_nohash_$i.wav"; done
  done
done
for v in $FLITE_VOICES; do
  for i in 0 1 2 3 4 5 6 7; do w=$(pick_near); say_flite "$v" "$w" "$OUT/_unknown_/near-${w}_flite-${v}_nohash_$i.wav"; done
done
echo "synth_speech.sh: $n voices, $(find "$OUT" -name '*.wav' | wc -l) clips in $OUT"
