# Shell helpers shared by the training scripts under models/ (source it; it defines functions only).

# The training step a checkpoint holds (its header only: no torch, no weights read).
step_of() { python3 -c "import sys; from stylize.model.checkpoint import read_metadata; print(read_metadata(sys.argv[1])['step'])" "$1"; }

# Fill folder $2 (emptied first) with what a GPU window trains and scores on, from data folder $1:
# the paintings (styles/), every other training photo (content/), the first 4 test photos (test/), and cache/.
copy_data() {
  rm -rf "$2" && mkdir -p "$2/content" "$2/cache" "$2/test"
  cp -r "$1/styles" "$2/styles"
  ls "$1/content/test" | sort | head -4 | while read -r f; do cp "$1/content/test/$f" "$2/test/"; done
  ls "$1/content/train" | sort | awk 'NR % 2 == 1' | while read -r f; do cp "$1/content/train/$f" "$2/content/"; done
}

# Convert the loss network (VGG16) into folder $1's cache/, as a GPU window finds it there: one
# tiny evaluation of model $2 on the CPU does it; the ONNX graphs it caches on the way are dropped.
cache_loss_network() {
  STYLIZE_CACHE_DIR=$1/cache python3 -m stylize evaluate -m "$2" --styles "$1/styles" --photos "$1/test" \
    --size 32 --iterations 1 --limit 1 --only starry_night --device cpu > /dev/null
  rm -rf "$1/cache/onnx"
}
