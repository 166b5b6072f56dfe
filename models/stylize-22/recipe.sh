#!/usr/bin/env bash
# Retrain stylize-22 from scratch and rebuild everything its model card shows.
# Run from the project root. DATA holds styles/ and content/{train,test}/ (models/README.md says
# how to get them from their public sources); nothing from it is committed.
#
#   DATA=/path/to/data bash models/stylize-22/recipe.sh
#
# Training writes a checkpoint every 250 steps: if it is interrupted (Ctrl-C, a time limit),
# run the same `stylize train` line again with --resume and it continues where it stopped.
set -euo pipefail
DATA=${DATA:?set DATA to the data folder (styles/, content/train/, content/test/): see models/README.md}
RUN=${RUN:-runs/stylize-22}
CARD=models/stylize-22
mkdir -p "$RUN"

# 1. Train: 22 styles, johnson network, 6000 steps of 4 crops at 128 px (24,000 crops).
#    On the project's 2-core CPU this took 1 h 41 min (see the model card).
stylize train "$DATA/styles" --content "$DATA/content/train" -o "$RUN/stylize-22.safetensors" \
  --preset johnson --steps 6000 --batch-size 4 --image-size 128 --style-size 256 --lr 0.001 \
  --content-weight 1 --style-weight 2 --tv-weight 0 --seed 0 --workers 1 \
  --checkpoint-every 250 --preview-every 500 --preview examples/photos/chelsea.jpg "$@"

# 2. Ship: drop the optimizer state, store fp16.
stylize export "$RUN/stylize-22.safetensors" -o weights/stylize-22.safetensors

# 3. The model card's loss curve.
python models/loss_curve.py "$RUN/stylize-22.log.jsonl" -o "$CARD/loss.png" \
  --title "stylize-22: training loss (20-record moving average)"

# 4. The model card's evaluation table (CPU-sized: see the card for the full-size command).
stylize evaluate weights/stylize-22.safetensors --styles "$DATA/styles" --photos "$DATA/content/test" \
  --size 128 --limit 1 --iterations 50,100 --device cpu > "$CARD/evaluation.md"

# 5. The gallery in examples/gallery/ (README), from the public-domain photos in examples/photos/.
python examples/gallery.py
