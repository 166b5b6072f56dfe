#!/usr/bin/env bash
# One chunk of stylize-22 training at GPU scale (256 px crops, batch 16), in one command of
# under 9 minutes on a lent GPU machine, continuing the newest weights and bringing them back.
# MODEL=stylize-22-small in `prepare` does the same for the small model.
#
# Here (CPU machine), first:      DATA=../shared/data bash models/stylize-22/gpu_chunk.sh prepare [INIT]
#   copies into .gpu/ (git-ignored, < 64 MiB so the device tool can carry it) the paintings, a
#   share of the training photos, the cached VGG16 loss network and the weights to continue
#   (INIT: default the newer by step of weights/$MODEL.safetensors and runs/$MODEL's
#   checkpoint), stored lean in fp16.
# On the GPU machine (device tool, carry [".gpu"], one call):
#   bash models/stylize-22/gpu_chunk.sh run
#   trains for MINUTES (default 7.5) and writes $OUT/$MODEL.safetensors (lean fp32, to
#   continue with --init-from) and its .log.jsonl. With WORK=/tmp/chunk in two calls on a warm
#   machine, the second continues the first.
#   bash models/stylize-22/gpu_chunk.sh evaluate
#   the evaluation table of issue 12 (256 px, the first 4 test photos, L-BFGS 50/100/300) for
#   .gpu/init.safetensors against the released weights, under init's own training loss; writes
#   $OUT/evaluation.md and the L-BFGS baselines ($OUT/baselines/: it starts from those in
#   models/*/baselines/ and computes only the missing ones; copy them back there).
#   It runs in fp32 (NVIDIA_TF32_OVERRIDE=0), as the CPU machine computes its baselines.
#   bash models/stylize-22/gpu_chunk.sh all
#   both in one call: the baselines (one photo at a time, little of the GPU) beside the training,
#   stopped after EVAL_SECONDS (default 420; finished pairs are kept), then packed into
#   $OUT/baselines.tar, since the device tool brings back at most 8 files.
# Check them on a CPU (tiny sizes, a few seconds):  bash models/stylize-22/gpu_chunk.sh run|evaluate|all --dry-run
set -euo pipefail
cd "$(dirname "$0")/../.."
GPU=.gpu
source models/lib.sh  # step_of
usage="usage: gpu_chunk.sh prepare [INIT] | run|evaluate|all [--dry-run]"
mode=${1:?$usage}

if [[ $mode == prepare ]]; then
  DATA=${DATA:-../shared/data}
  MODEL=${MODEL:-stylize-22}
  INIT=${2:-}
  if [[ -z $INIT ]]; then
    INIT=weights/$MODEL.safetensors
    run=runs/$MODEL/$MODEL.safetensors
    if [[ -f $run ]] && (( $(step_of "$run") > $(step_of "$INIT") )); then INIT=$run; fi
  fi
  rm -rf "$GPU" && mkdir -p "$GPU/content" "$GPU/cache" "$GPU/test"
  echo "$MODEL" > "$GPU/model"
  cp -r "$DATA/styles" "$GPU/styles"
  ls "$DATA/content/test" | sort | head -4 | while read -r f; do cp "$DATA/content/test/$f" "$GPU/test/"; done
  cp "weights/$MODEL.safetensors" "$GPU/released.safetensors"
  # Every other training photo: ~20 MB, leaving room for the rest under the 64 MiB carry limit.
  ls "$DATA/content/train" | sort | awk 'NR % 2 == 1' | while read -r f; do cp "$DATA/content/train/$f" "$GPU/content/"; done
  python -c "from stylize.train.vgg import load_vgg; load_vgg()"  # makes sure the converted network is cached
  cp "${STYLIZE_CACHE_DIR:-$HOME/.cache/stylize}/vgg16_caffe_relu4_3.safetensors" "$GPU/cache/"
  python -m stylize export "$INIT" -o "$GPU/init.safetensors"
  du -sh "$GPU"
  exit 0
fi

[[ $mode == run || $mode == evaluate || $mode == all ]] || { echo "$usage" >&2; exit 2; }
export OUT=${OUT:-runs/gpu-chunk}
mkdir -p "$OUT"
export PYTHONPATH=$PWD STYLIZE_CACHE_DIR=$PWD/$GPU/cache PYTHONUNBUFFERED=1
model=$(cat "$GPU/model")

if [[ $mode == all ]]; then
  timeout "${EVAL_SECONDS:-420}" bash "$0" evaluate "${@:2}" > "$OUT/evaluate.log" 2>&1 &
  bash "$0" run "${@:2}"
  wait $! || echo "evaluate stopped (exit $?): the table is partial, the finished baselines are kept"
  tar -C "$OUT" -cf "$OUT/baselines.tar" baselines && rm -rf "$OUT/baselines"
  ls "$OUT"
  exit 0
fi

if [[ $mode == evaluate ]]; then
  if [[ ${2:-} == --dry-run ]]; then
    scale=(--size 32 --iterations 2,3 --limit 1 --only starry_night --device cpu)
  else
    scale=(--size 256 --iterations 50,100,300 --limit 4 --device cuda)
  fi
  mkdir -p "$OUT/baselines"
  cp models/*/baselines/*.safetensors "$OUT/baselines/" 2>/dev/null || true
  NVIDIA_TF32_OVERRIDE=0 python3 -m stylize evaluate -m "$GPU/init.safetensors" --compare "$GPU/released.safetensors" --styles "$GPU/styles" \
    --photos "$GPU/test" --cache-dir "$OUT/baselines" "${scale[@]}" | tee "$OUT/evaluation.md"
  exit 0
fi
if [[ ${2:-} == --dry-run ]]; then
  size=(--batch-size 2 --image-size 32 --style-size 48 --device cpu --time-limit 0.1)
else
  size=(--batch-size 16 --image-size 256 --style-size 256 --device cuda --time-limit "${MINUTES:-7.5}")
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
fi
# The training's checkpoint (with optimizer state, over the 16 MB a returned file may have)
# stays behind in WORK. Give two calls on the same warm machine the same WORK and the second
# resumes the first's run, optimizer state included.
work=${WORK:-$(mktemp -d)}
[[ -n ${WORK:-} ]] || trap 'rm -rf "$work"' EXIT  # a folder of our own: nothing in it is kept
mkdir -p "$work"
start=(--init-from "$GPU/init.safetensors")
[[ -f $work/$model.safetensors ]] && start=(--resume)
step=$(step_of "$GPU/init.safetensors")
# --steps is the learning-rate schedule's end (the same in a resumed call): STEPS near the
# chunk's last step decays the rate within the chunk.
start+=(--steps "${STEPS:-$((step + 100000))}")
# The chunk recipe of models/stylize-22/chunk.sh at GPU scale.
python3 -m stylize train "$GPU/styles" --content "$GPU/content" -o "$work/$model.safetensors" \
  "${start[@]}" --lr 0.0002 --warmup-steps 100 \
  --content-weight 1 --content-layer relu2_2 --style-weight 5 --style-layer-weights 1,1,1,1 --tv-weight 0 \
  --seed 2 --workers 8 --checkpoint-every 500 --preview-every 1000000 "${size[@]}"
python3 -m stylize export "$work/$model.safetensors" -o "$OUT/$model.safetensors" --full --overwrite
log=$work/$model.log.jsonl
if [[ -f $log ]]; then
  cp "$log" "$OUT/"
  python3 - "$log" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
tail = rows[-20:]
print(f"steps {rows[0]['step']}..{rows[-1]['step']}; mean loss of the last {len(tail)} records: "
      + ", ".join(f"{k} {sum(r[k] for r in tail) / len(tail):.4g}" for k in ("content", "style", "total")))
PY
else
  echo "fewer steps than one log record (every 10 steps)"
fi
