#!/usr/bin/env bash
# Shared set-up of the training scripts (sourced, not run): checks ../shared/data, makes the
# synthesized clips once ($SYNTH, default /work/cache/synth-v3), makes $WORK, builds the release
# binary with training and sets $DATA and $BIN. The caller sets $WORK and names itself in $0.
DATA=../shared/data/speech_commands
for d in "$DATA" ../shared/data/speech/librispeech ../shared/data/negatives; do
  [ -d "$d" ] || { echo "$(basename "$0"): $d not found (see ../shared/data/README.md)" >&2; exit 1; }
done
SYNTH=${SYNTH:-/work/cache/synth-v3}
mkdir -p "$WORK"
[ -d "$SYNTH" ] || scripts/synth_speech.sh "$SYNTH" 1
cargo build --release -p sepstream-cli --features train
BIN=${CARGO_TARGET_DIR:-target}/release/sepstream
