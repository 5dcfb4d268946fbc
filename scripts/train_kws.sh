#!/usr/bin/env bash
# Retrains the shipped keyword model: synthesized extra speech, then the ensemble's members
# (configs/kws_tc_10ms.toml, one speaker split, one seed each; with the training speakers'
# read speech, wake phrases and other words of ../shared/data as `_unknown_` windows, as
# backgrounds under the words, and mined for hard negatives every 5 epochs), then
# `sepstream ensemble` merges them into configs/kws.toml + assets/kws.safetensors.
#
#   scripts/train_kws.sh [MEMBERS] [WORK_DIR]     (defaults: 5 members, /work/cache/kws)
#
# The synthesized clips go to $SYNTH (default /work/cache/synth-v3: the keywords, other words
# and near words of scripts/synth_speech.sh), made once.
# Needs ../shared/data/speech_commands, ../shared/data/speech/librispeech,
# ../shared/data/negatives, espeak-ng, flite and sox. Two members train at a time (one core
# each); about 16 minutes a pair on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
MEMBERS=${1:-5}
WORK=${2:-/work/cache/kws}
source scripts/train_prelude.sh
member() {
  RAYON_NUM_THREADS=1 "$BIN" train --spec configs/kws_tc_10ms.toml --data "$DATA" \
    --extra "$SYNTH" --epochs 40 --seed "$1" --split-seed 1 \
    --label-smoothing 0.1 --ema 0.99 --augment configs/augment_kws.toml \
    --negatives ../shared/data/speech/librispeech --negatives ../shared/data/negatives \
    --out "$WORK/member$1.toml" --weights "member$1.safetensors" > "$WORK/member$1.log" 2>&1
}
pids=()
for s in $(seq 1 "$MEMBERS"); do
  echo "training member $s of $MEMBERS (log: $WORK/member$s.log)"
  member "$s" & pids+=($!)
  if [ ${#pids[@]} -eq 2 ]; then wait "${pids[@]}"; pids=(); fi
done
[ ${#pids[@]} -eq 0 ] || wait "${pids[@]}"
specs=()
for s in $(seq 1 "$MEMBERS"); do specs+=("$WORK/member$s.toml"); done
"$BIN" ensemble --out configs/kws.toml "${specs[@]}"
"$BIN" eval --data "$DATA" --val-split
