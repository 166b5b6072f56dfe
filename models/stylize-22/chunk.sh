#!/usr/bin/env bash
# Train stylize-22 further, one chunk at a time, continuing the released model.
# Run from the project root, in the background; stop it with `kill -INT PID` (it saves) and
# start it again: it resumes its own checkpoint, or (first chunk, or on a new machine) starts
# from the released weights with --init-from.
#
#   DATA=../shared/data nohup bash models/stylize-22/chunk.sh > runs/chunk.out 2>&1 &
#
# The recipe (models/recipe-runs.md has the short controlled runs that chose it): the first
# release's loss with 2.5x its style weight (5 instead of 2), which in those runs moved every
# layer's Gram statistics closer to the painting's and put the painting's texture over the
# whole photo, where the first release's weight gave a colour grade with a fine hatching.
# Learning rate 2e-4, not the first run's 1e-3: the release ended its schedule at 1e-5, and
# restarting it at 1e-3 grew a bright blob on the same spot of the preview photo in every
# style within 500 steps (chunks 1 and 2a in the card's history). At 2e-4 it came later
# (chunk 2b, by step 8,000), and from there it comes and goes every few hundred steps, so
# every 250 steps the weights are also kept as a lean model in
# runs/stylize-22/stylize-22.snapshots/, beside the preview grid of the same step: a
# release can be any snapshot whose previews and 1024 px sheets show no blob (the card's
# history lists which steps had one).
set -euo pipefail
DATA=${DATA:-../shared/data}
RUN=${RUN:-runs/stylize-22}
STEPS=${STEPS:-40000}
OUT="$RUN/stylize-22.safetensors"
mkdir -p "$RUN"
source "$(dirname "$0")/../lib.sh"  # step_of
if [[ -f "$OUT" ]]; then
  # A release made elsewhere (a GPU chunk) may have overtaken this run: then start a new one.
  if (( $(step_of "$OUT") < $(step_of weights/stylize-22.safetensors) )); then
    echo "$OUT is behind weights/stylize-22.safetensors; start a new run from the release: RUN=runs/NEW bash $0" >&2
    exit 1
  fi
  start=(--resume)
else
  start=(--init-from "${INIT:-weights/stylize-22.safetensors}")
fi
stylize train "$DATA/styles" --content "$DATA/content/train" -o "$OUT" "${start[@]}" \
  --preset johnson --steps "$STEPS" --batch-size 4 --image-size 128 --style-size 256 --lr 0.0002 \
  --warmup-steps 100 --content-weight 1 --content-layer relu2_2 --style-weight 5 \
  --style-layer-weights 1,1,1,1 --tv-weight 0 --seed 1 --workers 1 \
  --checkpoint-every 100 --preview-every 250 --snapshot-every 250 \
  --preview "$DATA/content/test/kodak_kodim05.jpg" "$@"
