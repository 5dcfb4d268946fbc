#!/usr/bin/env bash
# Fine-tunes the published DS-CNN-M (configs/hello_edge_ds_cnn_m.toml, imported from the Hello
# Edge graph) into causal streaming keyword models on ../shared/data, one per seed, and merges
# them with `sepstream ensemble` (docs/keyword-model.md, "Fine-tuned from the published
# DS-CNN-M"). Does not replace the shipped model.
#
#   scripts/train_kws_ds_cnn_m.sh [MEMBERS] [WORK_DIR]   (defaults: 2 members, /work/cache/kws-m)
#
# Two members cost 381,152 FLOPs per 10 ms of audio, the most that fits 400,000. Needs
# ../shared/data/speech_commands, ../shared/data/speech/librispeech, ../shared/data/negatives
# and the synthesized clips of scripts/synth_speech.sh ($SYNTH, made once; espeak-ng, flite,
# sox). About 27 minutes a member on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
MEMBERS=${1:-2}
WORK=${2:-/work/cache/kws-m}
source scripts/train_prelude.sh
specs=()
for s in $(seq 1 "$MEMBERS"); do
  echo "training member $s of $MEMBERS (log: $WORK/member$s.log)"
  "$BIN" train --spec configs/kws_ds_cnn_m.toml --init configs/hello_edge_ds_cnn_m.toml \
    --data "$DATA" --extra "$SYNTH" --epochs 16 --seed "$s" --split-seed 1 \
    --label-smoothing 0.1 --ema 0.99 --lr 3e-4 --augment configs/augment_ds_cnn.toml \
    --negatives ../shared/data/speech/librispeech --negatives ../shared/data/negatives \
    --mine-every 2 --mine-threshold 0.2 --negative-windows 4000 --keep-last \
    --out "$WORK/member$s.toml" --weights "member$s.safetensors" > "$WORK/member$s.log" 2>&1
  specs+=("$WORK/member$s.toml")
done
"$BIN" ensemble --out "$WORK/kws_ds_cnn_m_x$MEMBERS.toml" "${specs[@]}"
"$BIN" eval --data "$DATA" --val-split --model "$WORK/kws_ds_cnn_m_x$MEMBERS.toml"
