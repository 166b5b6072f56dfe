#!/usr/bin/env bash
# Retrain stylize-22-small from scratch: stylize-22's recipe (../stylize-22/recipe.sh) with the
# `small` network. Run from the project root; DATA holds styles/ and content/{train,test}/
# (models/README.md says how to get them from their public sources).
#
#   DATA=/path/to/data bash models/stylize-22-small/recipe.sh
#
# A checkpoint is written every 250 steps: after an interruption, run the `stylize train`
# line again with --resume.
set -euo pipefail
DATA=${DATA:?set DATA to the data folder (styles/, content/train/, content/test/): see models/README.md}
RUN=${RUN:-runs/stylize-22-small}
CARD=models/stylize-22-small
mkdir -p "$RUN"

# 1. Train: 22 styles, small network, 6000 steps of 4 crops at 128 px (1 h 11 min on the 2-core CPU).
stylize train "$DATA/styles" --content "$DATA/content/train" -o "$RUN/stylize-22-small.safetensors" \
  --preset small --steps 6000 --batch-size 4 --image-size 128 --style-size 256 --lr 0.001 \
  --content-weight 1 --style-weight 2 --tv-weight 0 --seed 0 --workers 1 \
  --checkpoint-every 250 --preview-every 1000 --preview examples/photos/chelsea.jpg "$@"

# 2. Ship: drop the optimizer state, store fp16.
stylize export "$RUN/stylize-22-small.safetensors" -o weights/stylize-22-small.safetensors

# 3. Loss curve and the CPU-sized evaluation (the same one as stylize-22's card, for comparison).
python models/loss_curve.py "$RUN/stylize-22-small.log.jsonl" -o "$CARD/loss.png" \
  --title "stylize-22-small: training loss (20-record moving average)"
stylize evaluate weights/stylize-22-small.safetensors --styles "$DATA/styles" --photos "$DATA/content/test" \
  --size 128 --limit 1 --iterations 50,100 --device cpu > "$CARD/evaluation.md"
