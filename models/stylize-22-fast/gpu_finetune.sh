#!/usr/bin/env bash
# One lent GPU window, one command: stylize-22-fast's perceptual fine-tune (distill.sh's step 2h:
# the teacher's loss, anchored to the teacher's renderings, with the lattice penalty), continued
# from the shipped student at GPU scale (16 crops of 256 px a step instead of 4 of 160), then
# scored against the teacher as the card's figures are (256 px, kodim01-04, the L-BFGS baselines
# of models/stylize-22/baselines).
#
# Here (CPU machine), first:     DATA=../shared/data bash models/stylize-22-fast/gpu_finetune.sh prepare
#   fills .gpu-fast/ (git-ignored, well under the device tool's 64 MiB carry): the paintings, every
#   other training photo, the first 4 test photos, the converted VGG16 loss network, the student to
#   continue (init.safetensors: INIT, default the shipped one; a lean file of any preset, such as a
#   snapshot of full8.sh's fine-tune, with TEACHER_WEIGHT as that step's anchor)
#   and its teacher (teacher.safetensors).
# On the GPU machine (device tool, carry [".gpu-fast"], timeout_s 580):
#   bash models/stylize-22-fast/gpu_finetune.sh run
#   trains for MINUTES (6.5) with the cosine ending at the window's end (at RATE steps/s, 18: a
#   little under stylize-22's 26 on an H200, for an H100 and the teacher's forward pass beside the
#   small student; a rate too low only ends the cosine early; LR 1e-3 starts the ninth release, at step 30,400, at about 8.7e-5;
#   the teacher anchor at the ninth release's 6.25e4, TEACHER_WEIGHT to change it),
#   exports the student (fp32), evaluates it against the
#   teacher, and brings back three files in $OUT: stylize-22-fast.safetensors, eval-vs-teacher.md
#   and logs.tar (log, snapshots, phases). Releasing it is then CPU work: the ONNX graph
#   (stylize export --onnx), the look at 1024 px beside the teacher, the card (README.md).
# Check it on a CPU first (toy sizes, about a minute): bash models/stylize-22-fast/gpu_finetune.sh run --dry-run
# (tests/test_gpu_window.py does, on made-up data, with GPU and OUT pointing into a temporary folder).
set -euo pipefail
cd "$(dirname "$0")/../.."
GPU=${GPU:-.gpu-fast}
[[ $GPU == /* ]] || GPU=$PWD/$GPU
usage="usage: gpu_finetune.sh prepare | run [--dry-run]"
mode=${1:?$usage}
source models/lib.sh  # step_of, copy_data, cache_loss_network

if [[ $mode == prepare ]]; then
  copy_data "${DATA:-../shared/data}" "$GPU"
  init=${INIT:-weights/stylize-22-fast.safetensors}
  cache_loss_network "$GPU" "$init"
  cp "$init" "$GPU/init.safetensors"
  cp weights/stylize-22.safetensors "$GPU/teacher.safetensors"
  du -sh "$GPU"
  exit 0
fi
[[ $mode == run ]] || { echo "$usage" >&2; exit 2; }
dry=0; [[ ${2:-} == --dry-run ]] && dry=1
OUT=${OUT:-runs/gpu-fast}
mkdir -p "$OUT"
export PYTHONPATH=$PWD STYLIZE_CACHE_DIR=$GPU/cache PYTHONUNBUFFERED=1
L=$(mktemp -d); W=$(mktemp -d)
trap 'rm -rf "$L" "$W"' EXIT  # what is kept goes to $OUT (logs.tar, models)
t0=$(date +%s); stamp() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a "$L/phases.txt"; }
step=$(step_of "$GPU/init.safetensors")
if (( dry )); then
  dev=cpu; size=(--batch-size 2 --image-size 32 --style-size 48 --workers 0); minutes=5; snap=4
  steps=$(( step + 12 )); ev=(--size 32 --iterations 2 --limit 1 --only starry_night)
else
  dev=cuda; size=(--batch-size 16 --image-size 256 --style-size 256 --workers 6); minutes=${MINUTES:-6.5}; snap=2000
  steps=$(python3 -c "print($step + int(${RATE:-18} * $minutes * 60 * 0.95))"); ev=(--size 256 --iterations 50,100,300 --limit 4)
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$L/env.txt" 2>&1 || true
fi
stamp "fine-tuning stylize-22-fast from step $step, --steps $steps, $minutes min"
python3 -m stylize train "$GPU/styles" -c "$GPU/content" -o "$W/stylize-22-fast.safetensors" --init-from "$GPU/init.safetensors" \
  --steps "$steps" --lr "${LR:-0.001}" --warmup-steps 100 --style-weight 5 --precision fp32 "${size[@]}" --device $dev \
  --teacher "$GPU/teacher.safetensors" --teacher-weight "${TEACHER_WEIGHT:-6.25e4}" --lattice-weight 1e10 --seed 7 \
  --checkpoint-every 1000 --preview-every 1000000 --snapshot-every "$snap" --time-limit "$minutes" \
  > "$L/train.txt" 2>&1 || stamp "training exit $?"
python3 -m stylize export -m "$W/stylize-22-fast.safetensors" -o "$OUT/stylize-22-fast.safetensors" --full --overwrite \
  > "$L/export.txt" 2>&1
cp "$W/stylize-22-fast.log.jsonl" "$L/" 2>/dev/null || true
[[ -d $W/stylize-22-fast.snapshots ]] && cp -r "$W/stylize-22-fast.snapshots" "$L/"
stamp "evaluating against the teacher"
mkdir -p "$L/baselines" && cp models/stylize-22/baselines/*.safetensors "$L/baselines/" 2>/dev/null || true
NVIDIA_TF32_OVERRIDE=0 python3 -m stylize evaluate -m "$OUT/stylize-22-fast.safetensors" --compare "$GPU/teacher.safetensors" \
  --styles "$GPU/styles" --photos "$GPU/test" --cache-dir "$L/baselines" --device $dev "${ev[@]}" \
  > "$OUT/eval-vs-teacher.md" 2> "$L/eval.err" || stamp "evaluate exit $?"
rm -rf "$L/baselines"
stamp done
tar -C "$L" -cf "$OUT/logs.tar" .
ls -la "$OUT"
