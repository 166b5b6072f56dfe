"""Wall time of ``stylize apply PHOTO --style-image PAINTING``, process start to file written.

Three calls, each a fresh process: the first (an empty style cache: the style is
learned), the second (the same painting: from the cache, rendered on ONNX Runtime without
PyTorch), and, for comparison, the same photo in a shipped style (``--style``) on the same
default backend. Each call's output file must exist afterwards. Prints a Markdown table.

    nice -n 10 python -m benchmarks.style_image_speed --photo runs/p1024.jpg --painting swirls.png
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stylize.train.vgg import CACHE_FILENAME
from stylize.io.weights import cache_dir


def timed(args: list[str], output: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one ``stylize apply`` process that must write ``output``.

    On a machine shared with other work the wall time grows with the load; the CPU time much less.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "stylize", "apply", *args, "-o", str(output), "--overwrite"], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    if done.returncode or not output.is_file():
        raise SystemExit(f"stylize {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photo", type=Path, required=True)
    parser.add_argument("--painting", type=Path, required=True)
    parser.add_argument("--style", default="starry_night", help="The shipped style to compare with.")
    parser.add_argument("--model", default=None, help="Default: the shipped default model.")
    parser.add_argument("--rounds", type=int, default=1, help="Each round starts with an empty style cache.")
    args = parser.parse_args()

    model = ["--model", args.model] if args.model else []
    rows: dict[str, list[tuple[float, float]]] = {}
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="stylize-speed-") as tmp:
        out = Path(tmp) / "out.jpg"
        for _ in range(args.rounds):
            cache = Path(tempfile.mkdtemp(prefix="cache-", dir=tmp))
            vgg = cache_dir() / CACHE_FILENAME
            if vgg.is_file():  # the converted loss network is a one-time cost of installing, not of a style
                (cache / vgg.name).symlink_to(vgg)
            env = {**os.environ, "STYLIZE_CACHE_DIR": str(cache)}
            styled = [str(args.photo), "--style-image", str(args.painting), *model, "--device", "cpu"]
            for label, call in [("--style-image, first call (learns)", styled),
                                ("--style-image, cached", styled),
                                (f"--style {args.style}", [str(args.photo), "--style", args.style, *model,
                                                           "--device", "cpu"])]:
                rows.setdefault(label, []).append(timed(call, out, env))
    print(f"load average at the start {load:.1f}, at the end {os.getloadavg()[0]:.1f}")
    print("| call | wall s (each round) | CPU s (user + system) |\n|---|---|---|")
    for label, runs in rows.items():
        print(f"| {label} | {', '.join(f'{w:.1f}' for w, _ in runs)} | {', '.join(f'{c:.1f}' for _, c in runs)} |")


if __name__ == "__main__":
    main()
