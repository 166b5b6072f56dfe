# Shell helpers shared by the training scripts under models/ (source it; it defines functions only).

# The training step a checkpoint holds (its header only: no torch, no weights read).
step_of() { python3 -c "import sys; from stylize.model.checkpoint import read_metadata; print(read_metadata(sys.argv[1])['step'])" "$1"; }
