#!/usr/bin/env bash
# The next student's candidate: stylize-22 distilled into `full8` (the `fast` network with its first
# and last convolution at full resolution, 8 channels there), which learned the teacher better than
# `fast` at the same multiply-adds (benchmarks/README.md, "What a candidate learns"). Four steps, each
# a resumable run; not released: it ships (as stylize-22-fast, `ship.sh "$RUN/ft4/final.safetensors"`)
# only if it beats the shipped student against the teacher with no new artifacts at 1024 px, at
# <= 0.5x the peer's end-to-end time. Run from the project root; DATA holds
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
mkdir -p "$RUN"

# 1. Distil from scratch, as distill.sh's step 1 (160 px crops, 4 a step; pixel and gradient L1),
#    for as many steps as the fast model's second release had in all.
STUDENT="$RUN/student.safetensors"
if [ ! -f "$RUN/final.safetensors" ]; then
  stylize distill weights/stylize-22.safetensors --content "$DATA/content/train" -o "$STUDENT" \
    --preset full8 --steps 7554 --seed 1 --checkpoint-minutes 5 $([ -f "$STUDENT" ] && echo --resume)
  stylize export "$STUDENT" -o "$RUN/final.safetensors"
fi

# Steps 2 to 4 are each a perceptual fine-tune under the teacher's loss (distill.sh's step 2: 256 px crops, 4 a
# step, style weight 5, the lattice penalty, bf16), kept near the teacher's renderings by an anchor: run in
# $RUN/DIR from FROM's weights to step STEPS; resumed where it stopped, skipped once its final.safetensors exists.
stage() {  # stage DIR FROM STEPS LR SEED ANCHOR
  local dir="$RUN/$1" out="$RUN/$1/stylize-22-full8.safetensors"
  mkdir -p "$dir"
  [ -f "$dir/final.safetensors" ] && return
  if [ -f "$out" ]; then
    stylize train "$DATA/styles" -c "$DATA/content/train" -o "$out" --resume --steps "$3"
  else
    stylize train "$DATA/styles" -c "$DATA/content/train" -o "$out" --init-from "$2" \
      --steps "$3" --batch-size 4 --image-size 256 --style-size 256 --lr "$4" --warmup-steps 50 --style-weight 5 \
      --seed "$5" --precision bf16 --snapshot-every 500 --checkpoint-every 200 \
      --teacher weights/stylize-22.safetensors --teacher-weight "$6" --lattice-weight 1e10
  fi
  stylize export "$out" -o "$dir/final.safetensors"
}

# 2. Anchor 1e6, lr 1e-3 on the cosine from step 0. The run was started for 16,000 steps and cut to 12,000
#    at its step-11,800 checkpoint: from step 10,500 it had stayed at 1.58x the teacher's loss, where the
#    shipped student's stage under the same anchor ended too.
stage ft "$RUN/final.safetensors" 12000 0.001 21 1e6

# 3. The anchor loosened to an eighth (1.25e5): the shipped student's stages ended nearer the teacher's
#    loss the looser their anchor (1e6: 1.59x, 5e5: 1.51x, 2.5e5: 1.46x, 1.25e5: 1.43x, 6.25e4: 1.42x).
#    The cosine's rate starts at about a third of --lr (2.6e-4). Started for 20,000 steps and cut to 16,000
#    at its step-15,800 checkpoint: it had stayed at 1.45x the teacher's loss from step 15,000, its rate down to 8e-5.
stage ft3 "$RUN/ft/final.safetensors" 16000 0.00075 22 1.25e5

# 4. The anchor halved (6.25e4), as the shipped student's last stage, which gained most in its worst style:
#    3,000 steps, the rate 2.4e-4 at the start.
stage ft4 "$RUN/ft3/final.safetensors" 19000 0.004 23 6.25e4
