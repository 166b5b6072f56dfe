#!/usr/bin/env bash
# Distil stylize-22-fast from the released stylize-22 (the teacher): the `fast` network learns
# to paint what the teacher paints, every crop in a random one of its 22 styles (pixel L1 plus
# L1 of image differences; no VGG pass). Run from the project root; DATA holds content/train/
# (models/README.md says how to get it from its public sources).
#
#   DATA=/path/to/data bash models/stylize-22-fast/distill.sh                  # start
#   DATA=/path/to/data bash models/stylize-22-fast/distill.sh --resume         # continue after a stop
#   DATA=/path/to/data bash models/stylize-22-fast/distill.sh --overwrite \
#       --init-from weights/stylize-22-fast.safetensors --steps 14000          # a new run from the shipped student
#   ... --device cuda --time-limit 9                                           # the same recipe in one GPU call
#
# The checkpoint (with optimizer state) and a preview (teacher above student) are written
# every 5 minutes and when --time-limit (minutes) runs out; the log is $RUN/stylize-22-fast.log.jsonl.
set -euo pipefail
DATA=${DATA:?set DATA to the data folder (content/train/): see models/README.md}
RUN=${RUN:-runs/fast}
mkdir -p "$RUN"

# 1. Distil: crops of 160 px from the photos at a short side of 320 px, 4 a step.
stylize distill weights/stylize-22.safetensors --content "$DATA/content/train" -o "$RUN/stylize-22-fast.safetensors" \
  --preset fast --steps 2400 --batch-size 4 --image-size 160 --resize 320 --lr 0.001 --gradient-weight 1 \
  --seed 0 --checkpoint-minutes 5 --preview examples/photos/chelsea.jpg "$@"

# 2. Ship: drop the optimizer state, store fp16; and its ONNX graph, which apply runs without torch.
stylize export "$RUN/stylize-22-fast.safetensors" -o weights/stylize-22-fast.safetensors --overwrite
stylize export -m weights/stylize-22-fast.safetensors --onnx weights/stylize-22-fast.onnx --overwrite

# 3. The card's figures: the perceptual loss beside the teacher's (same loss, the teacher's
#    L-BFGS baselines: forward passes only), and PSNR against the teacher, kodim01-04 at 256 px.
CARD=models/stylize-22-fast
stylize evaluate -m weights/stylize-22-fast.safetensors --compare weights/stylize-22.safetensors \
  --styles "$DATA/styles" --photos "$DATA/content/test" --size 256 --limit 4 --iterations 50,100,300 \
  --device cpu --cache-dir models/stylize-22/baselines > "$CARD/evaluation-vs-teacher.md"
# evaluation.md: the same table without the two teacher columns (the form every card has).
grep '^|' "$CARD/evaluation-vs-teacher.md" | cut -d'|' -f1-9 | sed 's/$/|/' > "$CARD/evaluation.md"
python models/teacher_match.py --student weights/stylize-22-fast.safetensors --teacher weights/stylize-22.safetensors \
  --photos "$DATA/content/test" --limit 4 --size 256 > "$CARD/teacher-psnr.md"
