#!/usr/bin/env bash
# The next student's candidate: stylize-22 distilled into `full8` (the `fast` network with its first
# and last convolution at full resolution, 8 channels there), which learned the teacher better than
# `fast` at the same multiply-adds (benchmarks/README.md, "What a candidate learns"). Three steps, each
# a resumable run; not released: it ships (as stylize-22-fast, distill.sh's steps 3 and 4 with its
# file as SHIP) only if it beats the shipped student against the teacher with no new artifacts at
# 1024 px, at <= 0.5x the peer's end-to-end time. Run from the project root; DATA holds
# content/train/ and styles/ (models/README.md says how to get them).
#
#   DATA=/path/to/data bash models/stylize-22-fast/full8.sh            # start, or continue after a stop
#
# A finished step leaves its final.safetensors, and is skipped when the script runs again.
#
# The log of each step is beside its checkpoint (RUN, runs/full8).
set -euo pipefail
DATA=${DATA:?set DATA to the data folder (content/train/): see models/README.md}
RUN=${RUN:-runs/full8}
mkdir -p "$RUN/ft"

# 1. Distil from scratch, as distill.sh's step 1 (160 px crops, 4 a step; pixel and gradient L1),
#    for as many steps as the fast model's second release had in all.
STUDENT="$RUN/student.safetensors"
if [ ! -f "$RUN/final.safetensors" ]; then
  stylize distill weights/stylize-22.safetensors --content "$DATA/content/train" -o "$STUDENT" \
    --preset full8 --steps 7554 --seed 1 --checkpoint-minutes 5 $([ -f "$STUDENT" ] && echo --resume)
  stylize export "$STUDENT" -o "$RUN/final.safetensors"
fi

# 2. One perceptual fine-tune under the teacher's loss (distill.sh's step 2 in one stage: 256 px crops,
#    anchor 1e6, lattice penalty, bf16), to step 16,000 with lr 1e-3 on the cosine from step 0.
OUT="$RUN/ft/stylize-22-full8.safetensors"
if [ ! -f "$RUN/ft/final.safetensors" ]; then
  if [ -f "$OUT" ]; then
    stylize train "$DATA/styles" -c "$DATA/content/train" -o "$OUT" --resume --steps 16000
  else
    stylize train "$DATA/styles" -c "$DATA/content/train" -o "$OUT" --init-from "$RUN/final.safetensors" \
      --steps 16000 --batch-size 4 --image-size 256 --style-size 256 --lr 0.001 --warmup-steps 50 --style-weight 5 \
      --seed 21 --precision bf16 --snapshot-every 500 --checkpoint-every 200 \
      --teacher weights/stylize-22.safetensors --teacher-weight 1e6 --lattice-weight 1e10
  fi
  stylize export "$OUT" -o "$RUN/ft/final.safetensors"
fi

# 3. The anchor loosened to a quarter (2.5e5, nearer the 6.25e4 of the shipped student's GPU windows) so the
#    teacher's loss leads, to step 24,000: the cosine's rate there starts at a quarter of --lr (2.5e-4).
OUT3="$RUN/ft3/stylize-22-full8.safetensors"
mkdir -p "$RUN/ft3"
if [ ! -f "$RUN/ft3/final.safetensors" ]; then
  if [ -f "$OUT3" ]; then
    stylize train "$DATA/styles" -c "$DATA/content/train" -o "$OUT3" --resume --steps 24000
  else
    stylize train "$DATA/styles" -c "$DATA/content/train" -o "$OUT3" --init-from "$RUN/ft/final.safetensors" \
      --steps 24000 --batch-size 4 --image-size 256 --style-size 256 --lr 0.001 --warmup-steps 50 --style-weight 5 \
      --seed 22 --precision bf16 --snapshot-every 500 --checkpoint-every 200 \
      --teacher weights/stylize-22.safetensors --teacher-weight 2.5e5 --lattice-weight 1e10
  fi
  stylize export "$OUT3" -o "$RUN/ft3/final.safetensors"
fi
