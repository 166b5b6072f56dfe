"""Training-step speed and learning of each ``--precision`` on this machine, in one run.

Trains the same network from the same seed on the same data sequence once per precision
(alternating the order across repeats), and prints the median wall and CPU time per step
(steps 3..N-1), the ratio against fp32, and the mean loss of the last quarter of the steps,
so "faster" and "learns as well" are read off the same run.

Usage: python benchmarks/train_precision.py STYLES PHOTOS [--preset small] [--size 128] [--batch 4]
       [--steps 40] [--repeats 2] [--precisions fp32,bf16]
"""
import argparse
import statistics
import tempfile
import time
from itertools import pairwise
from pathlib import Path

from stylize.train.loop import TrainSettings, train


def run(args: argparse.Namespace, precision: str) -> tuple[float, float, float]:
    stamps, totals = [], []

    def on_step(report) -> None:
        stamps.append((time.perf_counter(), time.process_time()))
        totals.append(report.losses["total"])

    settings = TrainSettings(steps=args.steps, batch_size=args.batch, image_size=args.size, style_size=2 * args.size,
                             preset=args.preset, workers=0, checkpoint_every=10**9, preview_every=10**9,
                             precision=precision)
    with tempfile.TemporaryDirectory() as tmp:
        train(Path(args.styles), Path(args.photos), Path(tmp) / "m.safetensors", settings, device="cpu",
              on_step=on_step)
    wall = statistics.median(b[0] - a[0] for a, b in pairwise(stamps[2:-1]))
    cpu = statistics.median(b[1] - a[1] for a, b in pairwise(stamps[2:-1]))
    tail = totals[-max(len(totals) // 4, 1):]
    return wall, cpu, sum(tail) / len(tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("styles")
    parser.add_argument("photos")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--precisions", default="fp32,bf16")
    args = parser.parse_args()
    names = args.precisions.split(",")
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in names}
    for repeat in range(args.repeats):
        for name in names if repeat % 2 == 0 else names[::-1]:
            results[name].append(run(args, name))
    base = statistics.median(r[0] for r in results[names[0]])
    print(f"preset {args.preset}, {args.size} px, batch {args.batch}, {args.steps} steps, {args.repeats} repeats")
    for name in names:
        wall = statistics.median(r[0] for r in results[name])
        cpu = statistics.median(r[1] for r in results[name])
        loss = statistics.median(r[2] for r in results[name])
        print(f"{name:5s} wall {wall * 1000:6.0f} ms/step  cpu {cpu * 1000:6.0f} ms/step  "
              f"speed-up {base / wall:4.2f}x  loss (last quarter) {loss:.4g}")


if __name__ == "__main__":
    main()
