#!/usr/bin/env bash
# A GPU fine-tune against the blotches (and, we hope, the halos) of issue 26: the GPU window's
# run (models/gpu_window.sh) with a share of the training crops given a flat or clipped region
# (`stylize train --flat-areas`, FLAT_AREAS, default 0.25), so the network learns to paint strokes
# where a photo is smooth or blown out instead of a flat bright patch. Both shipped models are
# continued, each evaluated per style; gpu_check is left out (CHECK=0) for more training minutes.
#
# Here (CPU machine), first:     DATA=../shared/data bash models/stylize-22/flat_finetune.sh prepare
# On the GPU machine (device tool, carry [".gpu"], timeout_s 580):
#   MIN_DEFAULT=5 MIN_SMALL=3 bash models/stylize-22/flat_finetune.sh run
# Check it on a CPU first:       bash models/stylize-22/flat_finetune.sh run --dry-run
# Then, here, on what came back: python -m benchmarks.artifacts --model OUT/stylize-22.safetensors ...
#   against the shipped model (blotches % on the barn photo: 3.55 at release 5), and look at the sky.
set -euo pipefail
cd "$(dirname "$0")/../.."
FLAT_AREAS=${FLAT_AREAS:-0.25} CHECK=${CHECK:-0} OUT=${OUT:-runs/flat-finetune} exec bash models/gpu_window.sh "$@"
