#!/usr/bin/env bash
# Distil stylize-22-fast from the released stylize-22 (the teacher): the `fast` network learns
# to paint what the teacher paints, every crop in a random one of its 22 styles (pixel L1 plus
# L1 of image differences; no VGG pass), then fine-tuned under the teacher's perceptual loss, kept near the teacher's renderings.
# Run from the project root; DATA holds content/train/ and styles/ (models/README.md says how to
# get them from their public sources).
#
#   DATA=/path/to/data bash models/stylize-22-fast/distill.sh                  # start
#   DATA=/path/to/data bash models/stylize-22-fast/distill.sh --resume         # continue after a stop
#   DATA=/path/to/data bash models/stylize-22-fast/distill.sh --overwrite \
#       --init-from weights/stylize-22-fast.safetensors --steps 14000          # a new run from the shipped student
#   ... --device cuda --time-limit 9                                           # step 1 in one GPU call
#   FINETUNE=0 DATA=... bash models/stylize-22-fast/distill.sh                 # step 1's student, without step 2
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

# 2. Fine-tune under the teacher's own perceptual loss (VGG16: content 1, style 5 at relu1_2..relu4_3,
#    paintings at 256 px, as the teacher's card says): the pixel loss taught layout and palette, this
#    teaches the strokes. Every stage keeps the teacher's pixel loss beside the perceptual one (--teacher;
#    at 2e6 about a third of the perceptual loss at the start): without it, 2,800 steps painted a regular
#    4 px grid into flat skies (2026-12-05, the card's "Known weaknesses").
#    a. 2,800 steps from step 1's student (--steps is a total and the cosine runs over it from step 0:
#       from the released student's step 6,700 of 9,500, lr 7e-4 starts at about 1.4e-4, ends at 7e-6).
#    b. 1,500 more with --lattice-weight 1e10, which takes away the grid that stage a still painted into
#       the_scream's sky (lr 2e-3 over 11,000 steps: about 1e-4 at its start, 2e-5 at its end).
#    c. 4,200 more at the evaluation's crop size, 256 px (the fourth release): 1,400 with lr 6e-3 over
#       12,400 steps (2.4e-4 to 6e-5), then 2,800 re-warmed with lr 2e-3 over 15,200 (1.8e-4 to 2e-5).
#       The release continued the first part's own run (`--resume --steps 15200 --lr 0.002`, its
#       optimizer state kept); the second part here starts afresh from the first's result.
#    d. 3,200 more at 256 px with the anchor halved (teacher weight 1e6), lr 3e-3
#       over 18,400 (2.5e-4 to 3e-5): the fifth release, run in bf16 as every later stage (fast on a
#       CPU with AVX-512 BF16 or AMX; on one without, precision=fp32 is quicker).
#    e. 3,000 more at 256 px with the anchor halved again (teacher weight 5e5), lr 4.5e-3 over
#       21,400 (2.6e-4 to 4.5e-5): the sixth release (bf16, as d).
#    f. 3,000 more at 256 px with the anchor halved once more (teacher weight 2.5e5), lr 5.5e-3 over
#       24,400 (2.6e-4 to 5.5e-5): the seventh release (bf16, as d).
#    g. 3,000 more at 256 px with the anchor halved a fourth time (teacher weight 1.25e5), lr 6.5e-3
#       over 27,400 (2.5e-4 to 6.5e-5): the eighth release (bf16, as d).
#    h. 3,000 more at 256 px with the anchor halved a fifth time (teacher weight 6.25e4), lr 7.5e-3
#       over 30,400 (2.5e-4 to 7.5e-5): the ninth release (bf16, as d).
#    i. The anchor halved a sixth time (teacher weight 3.125e4), lr 8.5e-3 over 33,400 (2.5e-4 at its
#       start), in fp32 (a CPU without BF16). The tenth release's run was cut to 32,500 at its step-31,357
#       checkpoint (`--resume --steps 32500`: 1.1e-4 to 8.5e-5 over the rest); it had stayed at 1.41x the
#       teacher's loss from step 31,000.
#    FINETUNE=0 ships step 1's student instead. A stage stopped part-way continues with the same command,
#    a finished one (its final.safetensors written) is skipped (with --overwrite, the stages start over).
finetune() {  # [anchor=TEACHER_WEIGHT (2e6)] [precision=bf16 (fp32)] finetune STAGE FROM STEPS LR SEED CROP [more train options]
  local dir="$RUN/$1" from=$2 steps=$3 lr=$4 seed=$5 crop=$6
  local out="$dir/stylize-22-fast.safetensors"
  shift 6
  mkdir -p "$dir"
  [ -f "$dir/final.safetensors" ] && [ -z "$OVERWRITE" ] && return  # done (a finished run refuses --resume)
  if [ -f "$out" ] && [ -z "$OVERWRITE" ]; then
    stylize train "$DATA/styles" -c "$DATA/content/train" -o "$out" --resume --steps "$steps"
  else
    stylize train "$DATA/styles" -c "$DATA/content/train" -o "$out" --init-from "$from" --steps "$steps" \
      --batch-size 4 --image-size "$crop" --style-size 256 --lr "$lr" --warmup-steps 50 --style-weight 5 --seed "$seed" \
      --precision "${precision:-fp32}" --snapshot-every 500 --checkpoint-every 200 --preview examples/photos/chelsea.jpg \
      --teacher weights/stylize-22.safetensors --teacher-weight "${anchor:-2e6}" $([ -f "$out" ] && echo --overwrite) "$@"
  fi
  stylize export "$out" -o "$dir/final.safetensors" --overwrite
}
OVERWRITE=$([[ " $* " == *" --overwrite "* ]] && echo 1 || true)  # a new run: the stages start over too
SHIP="$RUN/stylize-22-fast.safetensors"
if [ "${FINETUNE:-1}" != 0 ]; then
  STEP=$(python -c 'import json, sys; from safetensors import safe_open
print(json.loads(safe_open(sys.argv[1], "np").metadata()["stylize"])["step"])' "$SHIP")
  finetune perceptual "$SHIP" $((STEP + 2800)) 0.0007 4 160
  finetune lattice "$RUN/perceptual/final.safetensors" $((STEP + 4300)) 0.002 5 160 --lattice-weight 1e10
  finetune crop256 "$RUN/lattice/final.safetensors" $((STEP + 5700)) 0.006 6 256 --lattice-weight 1e10
  finetune crop256-more "$RUN/crop256/final.safetensors" $((STEP + 8500)) 0.002 7 256 --lattice-weight 1e10
  precision=bf16 anchor=1e6 finetune anchor-1e6 "$RUN/crop256-more/final.safetensors" $((STEP + 11700)) 0.003 9 256 --lattice-weight 1e10
  precision=bf16 anchor=5e5 finetune anchor-5e5 "$RUN/anchor-1e6/final.safetensors" $((STEP + 14700)) 0.0045 11 256 --lattice-weight 1e10
  precision=bf16 anchor=2.5e5 finetune anchor-2.5e5 "$RUN/anchor-5e5/final.safetensors" $((STEP + 17700)) 0.0055 13 256 --lattice-weight 1e10
  precision=bf16 anchor=1.25e5 finetune anchor-1.25e5 "$RUN/anchor-2.5e5/final.safetensors" $((STEP + 20700)) 0.0065 15 256 --lattice-weight 1e10
  precision=bf16 anchor=6.25e4 finetune anchor-6.25e4 "$RUN/anchor-1.25e5/final.safetensors" $((STEP + 23700)) 0.0075 17 256 --lattice-weight 1e10
  anchor=3.125e4 finetune anchor-3.125e4 "$RUN/anchor-6.25e4/final.safetensors" $((STEP + 26700)) 0.0085 19 256 --lattice-weight 1e10
  SHIP="$RUN/anchor-3.125e4/final.safetensors"
fi

# 3. Ship: the lean checkpoint and ONNX graph into weights/, the card's figures against the teacher.
bash models/stylize-22-fast/ship.sh "$SHIP"
