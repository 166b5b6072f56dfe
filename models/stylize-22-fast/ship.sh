#!/usr/bin/env bash
# Ship a student as stylize-22-fast: its lean checkpoint and ONNX graph into weights/, and the card's
# figures against the teacher beside the card. distill.sh ends with it; full8.sh's student ships with it
# once it beats the shipped one (full8.sh says how it is judged). Run from the project root; DATA holds
# content/test/ and styles/ (models/README.md says how to get them).
#
#   DATA=/path/to/data bash models/stylize-22-fast/ship.sh runs/fast/anchor-6.25e4/final.safetensors
#
# WEIGHTS (weights) and CARD (models/stylize-22-fast) say where the files go. Each of the card's figures
# is written beside its file and moved over it when complete: a failed or stopped evaluation leaves the
# card's files as they were.
set -euo pipefail
STUDENT=${1:?give the student checkpoint to ship}
DATA=${DATA:?set DATA to the data folder (content/test/, styles/): see models/README.md}
WEIGHTS=${WEIGHTS:-weights}
CARD=${CARD:-models/stylize-22-fast}
MODEL="$WEIGHTS/stylize-22-fast.safetensors"
TEACHER=weights/stylize-22.safetensors
FIGURES=(evaluation-vs-teacher evaluation teacher-psnr)
trap 'for figures in "${FIGURES[@]}"; do rm -f "$CARD/$figures.md.part"; done' EXIT

# 1. Drop the optimizer state, store fp16; and its ONNX graph, which apply runs without torch.
stylize export "$STUDENT" -o "$MODEL" --overwrite
stylize export -m "$MODEL" --onnx "$WEIGHTS/stylize-22-fast.onnx" --overwrite

# 2. The card's figures: the perceptual loss beside the teacher's (same loss, the teacher's L-BFGS
#    baselines: forward passes only), and PSNR against the teacher, kodim01-04 at 256 px.
stylize evaluate -m "$MODEL" --compare "$TEACHER" --styles "$DATA/styles" --photos "$DATA/content/test" \
  --size 256 --limit 4 --iterations 50,100,300 --device cpu --cache-dir models/stylize-22/baselines \
  > "$CARD/evaluation-vs-teacher.md.part"
# evaluation.md: the same table without the two teacher columns (the form every card has).
grep '^|' "$CARD/evaluation-vs-teacher.md.part" | cut -d'|' -f1-9 | sed 's/$/|/' > "$CARD/evaluation.md.part"
python models/teacher_match.py --student "$MODEL" --teacher "$TEACHER" --photos "$DATA/content/test" \
  --limit 4 --size 256 > "$CARD/teacher-psnr.md.part"
for figures in "${FIGURES[@]}"; do
  mv "$CARD/$figures.md.part" "$CARD/$figures.md"
done
