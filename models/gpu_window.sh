#!/usr/bin/env bash
# One lent GPU window, one command: continue BOTH shipped models with the GPU chunk recipe,
# evaluate each per style, then time the GPU paths with what is left.
#
# Here (CPU machine), first:     DATA=../shared/data bash models/gpu_window.sh prepare
#   fills .gpu/ (git-ignored, < 64 MiB for the device tool's carry): the paintings, every
#   other training photo, the first 4 test photos, the converted VGG16 loss network, and the
#   two shipped models to continue (init-stylize-22 and init-stylize-22-small, lean fp16).
# On the GPU machine (device tool, carry [".gpu"], timeout_s 580):
#   bash models/gpu_window.sh run
#   trains stylize-22 for MIN_DEFAULT minutes, then stylize-22-small for MIN_SMALL (one after
#   the other: alone they ran 26 and 34 steps/s on an H200, side by side about 12 and 15, so
#   in turn each gets more steps), keeping a lean snapshot every SNAPSHOT steps; evaluates
#   each per style against its init (256 px, kodim01-04, the cached L-BFGS baselines of
#   models/*/baselines); runs the CUDA tests; then benchmarks.gpu_check until the window ends
#   (its first step times apply's fast paths: benchmarks/gpu_variants.py, table in gpu-variants.md).
#   END_COSINE=1 sets each run's --steps so that its cosine schedule ends with its minutes
#   (at the measured steps/s: RATE_DEFAULT, RATE_SMALL); otherwise the schedule runs on and a
#   later window continues it. Brings back at most 8 files in $OUT: both models (lean fp32),
#   both evaluation tables, the fast-path table, and one tar of logs, snapshots and the gpu_check results.
#   FLAT_AREAS=P trains with --flat-areas P (models/stylize-22/flat_finetune.sh: against blotches).
# Check it on a CPU first (toy sizes, a minute or two): bash models/gpu_window.sh run --dry-run
# (tests/test_gpu_window.py does, on made-up data, with GPU and OUT pointing into a temporary folder).
set -euo pipefail
cd "$(dirname "$0")/.."
GPU=${GPU:-.gpu}  # a test points it elsewhere
[[ $GPU == /* ]] || GPU=$PWD/$GPU  # absolute: "$PWD/$GPU" wrote a test's cache into the repository
usage="usage: gpu_window.sh prepare | run [--dry-run]"
mode=${1:?$usage}
models=(stylize-22 stylize-22-small)
source models/lib.sh  # step_of, copy_data, cache_loss_network

if [[ $mode == prepare ]]; then
  DATA=${DATA:-../shared/data}
  copy_data "$DATA" "$GPU"
  cache_loss_network "$GPU" "weights/${models[1]}.safetensors"
  for m in "${models[@]}"; do cp "weights/$m.safetensors" "$GPU/init-$m.safetensors"; done
  du -sh "$GPU"
  exit 0
fi
[[ $mode == run ]] || { echo "$usage" >&2; exit 2; }
dry=0; [[ ${2:-} == --dry-run ]] && dry=1
OUT=${OUT:-runs/gpu-window}
mkdir -p "$OUT"
export PYTHONPATH=$PWD STYLIZE_CACHE_DIR=$GPU/cache PYTHONUNBUFFERED=1
L=$(mktemp -d); W=$(mktemp -d)
trap 'rm -rf "$L" "$W"' EXIT  # what is kept goes to $OUT (logs.tar, models)
t0=$(date +%s); stamp() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a "$L/phases.txt"; }
if (( dry )); then
  dev=cpu; size=(--batch-size 2 --image-size 32 --style-size 48 --workers 0)
  minutes=(5 5); rates=(0 0); snap=4; ev=(--size 32 --iterations 2 --limit 1 --only starry_night)
else
  dev=cuda; size=(--batch-size 16 --image-size 256 --style-size 256 --workers 6)
  minutes=("${MIN_DEFAULT:-3.3}" "${MIN_SMALL:-2.2}"); rates=("${RATE_DEFAULT:-26}" "${RATE_SMALL:-34}")
  snap=${SNAPSHOT:-1500}; ev=(--size 256 --iterations 50,100,300 --limit 4)
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$L/env.txt" 2>&1 || true
fi
# The GPU chunk recipe (models/stylize-22/gpu_chunk.sh), for both models.
loss=(--content-weight 1 --content-layer relu2_2 --style-weight 5 --style-layer-weights 1,1,1,1 --tv-weight 0)
mkdir -p "$L/baselines"
cp models/*/baselines/*.safetensors "$L/baselines/" 2>/dev/null || true
for i in 0 1; do
  m=${models[$i]}; init=$GPU/init-$m.safetensors; step=$(step_of "$init")
  if (( dry )); then
    steps=$(( step + 12 ))  # one log record (every 10 steps) and a few snapshots
  elif [[ ${END_COSINE:-0} == 1 ]]; then
    steps=$(python3 -c "print($step + int(${rates[$i]} * ${minutes[$i]} * 60 * 0.95))")
  else
    steps=$(( step + 100000 ))
  fi
  stamp "training $m from step $step, --steps $steps, ${minutes[$i]} min"
  python3 -m stylize train "$GPU/styles" -c "$GPU/content" -o "$W/$m.safetensors" --init-from "$init" \
    --steps "$steps" --lr "${LR:-0.0002}" --warmup-steps 100 "${loss[@]}" "${size[@]}" --device $dev \
    --checkpoint-every 1000 --preview-every 1000000 --snapshot-every "$snap" --time-limit "${minutes[$i]}" --seed 3 \
    --flat-areas "${FLAT_AREAS:-0}" \
    > "$L/train-$m.txt" 2>&1 || stamp "training $m exit $?"
  python3 -m stylize export -m "$W/$m.safetensors" -o "$OUT/$m.safetensors" --full --overwrite >> "$L/export.txt" 2>&1
  cp "$W/$m.log.jsonl" "$L/" 2>/dev/null || true
  [[ -d $W/$m.snapshots ]] && cp -r "$W/$m.snapshots" "$L/"
  stamp "evaluating $m"
  NVIDIA_TF32_OVERRIDE=0 python3 -m stylize evaluate -m "$OUT/$m.safetensors" --compare "$init" --styles "$GPU/styles" \
    --photos "$GPU/test" --cache-dir "$L/baselines" --device $dev "${ev[@]}" > "$OUT/eval-$m.md" 2> "$L/eval-$m.err" \
    || stamp "evaluate $m exit $?"
done
rm -rf "$L/baselines"
if [[ ${CHECK:-1} == 0 ]]; then
  stamp "gpu_check skipped (CHECK=0)"
elif (( dry )); then
  python3 -m benchmarks.gpu_check "$L/gpu-check" --dry-run > "$L/gpu-check.txt" 2>&1 || stamp "gpu_check exit $?"
else
  timeout 90 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_speed_paths.py tests/test_fast_paths.py -k cuda \
    > "$L/cuda-tests.txt" 2>&1 || stamp "cuda tests exit $?"
  left=$(( ${WINDOW_SECONDS:-560} - ($(date +%s) - t0) ))
  stamp "gpu_check with ${left} s left"
  (( left > 20 )) && { timeout "$left" python3 -m benchmarks.gpu_check "$L/gpu-check" --budget-s "$left" --no-tests \
    > "$L/gpu-check.txt" 2>&1 || stamp "gpu_check exit $?"; }
fi
stamp done
if [[ -f $L/gpu-check/variants/variants.md ]]; then cp "$L/gpu-check/variants/variants.md" "$OUT/gpu-variants.md"; fi
tar -C "$L" -cf "$OUT/logs.tar" .
ls -la "$OUT"
