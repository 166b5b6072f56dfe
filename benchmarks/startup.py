"""Start-up time of the light commands: ``--help``, ``--version``, ``styles``, ``info``, ``apply``.

Each runs as a fresh ``stylize`` process (the venv's console script: what a user waits for at the prompt),
interleaved round by round with the others so that load from other jobs falls on all
alike; the figure is the median wall time. ``apply`` stylizes a small photo (so that the
network's arithmetic is a small part) with the shipped model on ONNX Runtime. Two
references run in the same rounds: a bare ``python -c pass`` and ``python -c "import
torch"``, what each command would pay on top if it imported PyTorch.

    python -m benchmarks.startup --rounds 9 [--stylize-python VENV/bin/python]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.end_to_end import interleaved, stylize_command


def commands(folder: Path, python: str = sys.executable) -> dict[str, list[str]]:
    """The commands, stylize's run by ``python``; ``import torch`` by this one (a wheel's venv has none)."""
    stylize = stylize_command(python)
    photo = folder / "photo.jpg"
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((192, 256, 3)) * 255).astype(np.uint8)).save(photo)
    return {
        "python -c pass": [python, "-c", "pass"],
        "python -c 'import torch'": [sys.executable, "-c", "import torch"],
        "stylize --help": [*stylize, "--help"],
        "stylize --version": [*stylize, "--version"],
        "stylize styles": [*stylize, "styles"],
        "stylize info": [*stylize, "info"],
        "stylize apply (256x192 photo, ONNX)": [*stylize, "apply", str(photo), "--style", "starry", "--device", "cpu",
                                                "-o", str(folder / "out.jpg"), "--overwrite"],
    }


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--stylize-python", default=sys.executable,
                        help="python of the venv whose stylize is timed (default: this one; see end_to_end.py)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        times = interleaved(commands(Path(tmp), args.stylize_python), args.rounds, wall)
    print(f"| command, median of {args.rounds} interleaved runs | wall s | min s |\n|---|---|---|")
    for name, seconds in times.items():
        print(f"| {name} | {statistics.median(seconds):.2f} | {min(seconds):.2f} |")


if __name__ == "__main__":
    main()
