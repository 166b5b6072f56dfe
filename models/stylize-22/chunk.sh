#!/usr/bin/env bash
# Train stylize-22 further, one chunk at a time, continuing the released model.
# Run from the project root, in the background; stop it with `kill -INT PID` (it saves) and
# start it again: it resumes its own checkpoint, or (first chunk, or on a new machine) starts
# from the released weights with --init-from.
#
#   DATA=../shared/data nohup bash models/stylize-22/chunk.sh > runs/chunk.out 2>&1 &
#
# The recipe (see models/README.md for the runs that chose it): content at relu3_3, which
# keeps the layout and leaves texture to the style; relu4_3's Gram term, which carries the
# largest motifs but is ~1000x smaller than the other layers' at equal weight, weighted up;
# paintings at 384 px for larger strokes than the first release's 256.
set -euo pipefail
DATA=${DATA:-../shared/data}
RUN=${RUN:-runs/stylize-22}
STEPS=${STEPS:-40000}
OUT="$RUN/stylize-22.safetensors"
mkdir -p "$RUN"
if [[ -f "$OUT" ]]; then
  start=(--resume)
else
  start=(--init-from "${INIT:-weights/stylize-22.safetensors}")
fi
stylize train "$DATA/styles" --content "$DATA/content/train" -o "$OUT" "${start[@]}" \
  --preset johnson --steps "$STEPS" --batch-size 4 --image-size 128 --style-size 384 --lr 0.001 \
  --warmup-steps 100 --content-weight 1 --content-layer relu3_3 --style-weight 2 \
  --style-layer-weights 1,1,1,1000 --tv-weight 0 --seed 1 --workers 1 \
  --checkpoint-every 100 --preview-every 500 --preview "$DATA/content/test/kodak_kodim05.jpg" "$@"
