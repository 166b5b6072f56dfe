"""Median wall and CPU (process) seconds per training step (steps 3..N-1: no warm-up, no final preview/save).

CPU time is what the step costs; wall time also shows how busy the machine was.

Usage: python benchmarks/train_step.py STYLES PHOTOS VGG SIZE BATCH [STEPS]
Also under torchrun (rank 0 prints). VGG: a torchvision-format VGG16 file, or "real".
"""
import os
import statistics
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

from stylize.runtime.process import own_process
from stylize.train.loop import TrainSettings, train

own_process()  # as `stylize train` does

styles, photos, vgg, size, batch = sys.argv[1:6]
steps = int(sys.argv[6]) if len(sys.argv) > 6 else 12
stamps = []
with tempfile.TemporaryDirectory() as tmp:
    settings = TrainSettings(steps=steps, batch_size=int(batch), image_size=int(size), style_size=256,
                             preset="small", workers=0, checkpoint_every=10**9, preview_every=10**9)
    start = time.perf_counter()
    train(Path(styles), Path(photos), Path(tmp) / "m.safetensors", settings, device="cpu",
          vgg_weights=None if vgg == "real" else Path(vgg), on_step=lambda r: stamps.append((time.perf_counter(), time.process_time())))
    total = time.perf_counter() - start
if os.environ.get("RANK", "0") == "0":
    wall = statistics.median(b[0] - a[0] for a, b in pairwise(stamps[2:-1]))
    cpu = statistics.median(b[1] - a[1] for a, b in pairwise(stamps[2:-1]))
    print(f"size {size} batch {batch} world {os.environ.get('WORLD_SIZE', '1')} threads {os.environ.get('OMP_NUM_THREADS')}: "
          f"wall {wall * 1000:.0f} ms/step, cpu {cpu * 1000:.0f} ms/step (rank 0), train() {total:.1f} s")
