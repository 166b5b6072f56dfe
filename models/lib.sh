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
