#!/usr/bin/env bash
# Short controlled recipe runs: the same 4 weak styles, the small network, 600 steps of 4
# crops at 128 px from scratch, one CPU thread each, one run at a time. Only the named
# setting changes between runs; models/README.md has the table and what was seen.
#
#   DATA=../shared/data bash models/ablation.sh           # all runs
#   DATA=../shared/data bash models/ablation.sh C D       # some
set -euo pipefail
DATA=${DATA:-../shared/data}
RUN=${RUN:-runs/ablation}
STEPS=${STEPS:-600}
mkdir -p "$RUN/styles"
for s in starry_night udnie impression_sunrise dance_foyer_at_the_opera; do cp "$DATA/styles/$s.jpg" "$RUN/styles/"; done
declare -A RECIPE=(
  [A]="--content-layer relu2_2 --style-layer-weights 1,1,1,1 --style-size 256 --style-weight 2"
  [B]="--content-layer relu3_3 --style-layer-weights 1,1,1,1 --style-size 256 --style-weight 2"
  [C]="--content-layer relu3_3 --style-layer-weights 1,1,1,1000 --style-size 256 --style-weight 2"
  [D]="--content-layer relu2_2 --style-layer-weights 1,1,1,1 --style-size 256 --style-weight 5"
  [E]="--content-layer relu2_2 --style-layer-weights 1,1,1,1 --style-size 384 --style-weight 2"
  [F]="--content-layer relu2_2 --style-layer-weights 1,1,1,100 --style-size 256 --style-weight 2"
)
names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=(A B C D E F)
for name in "${names[@]}"; do
  if [[ -f "$RUN/$name.safetensors" ]]; then continue; fi
  start=$(date +%s)
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=1 stylize train "$RUN/styles" --content "$DATA/content/train" -o "$RUN/$name.safetensors" \
    --preset small --steps "$STEPS" --batch-size 4 --image-size 128 --seed 0 --workers 0 \
    --checkpoint-every 100 --preview-every 100000 ${RECIPE[$name]} > "$RUN/$name.out" 2>&1
  echo "$name $(( $(date +%s) - start )) s: ${RECIPE[$name]}" >> "$RUN/times.txt"
done
