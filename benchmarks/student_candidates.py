"""Candidate architectures for the distilled CPU student: ONNX Runtime time and multiply-adds.

Every candidate is a :class:`~stylize.config.NetConfig` (so the winner is a preset that
checkpoints, ``export-onnx`` and ``apply`` handle unchanged), exported with
:func:`stylize.model.onnx_export.export_onnx` exactly as ``apply`` caches it, then timed in ONNX
Runtime on one square image with 1 and 2 intra-op threads. Calls are interleaved round by
round (every candidate once per round), and the figure used is the median over rounds
of each candidate's time relative to the ``small`` preset's in the same round, so load
from other jobs on a shared machine falls on both sides of a ratio alike.

    python -m benchmarks.student_candidates --size 1024 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from stylize.model.checkpoint import Checkpoint
from stylize.config import PRESETS, NetConfig
from stylize.model.network import StyleNet
from stylize.model.onnx_export import export_onnx

N_STYLES = 22

CANDIDATES: dict[str, NetConfig] = {
    "johnson (teacher)": PRESETS["johnson"],
    "small": PRESETS["small"],
    "small, separable": NetConfig(channels=(16, 32, 64), n_residual=3, separable=True),
    "8-32-64, 4 res, separable": NetConfig(channels=(8, 32, 64), n_residual=4, separable=True),
    "8-32-64, 4 res, separable, shuffle": NetConfig(channels=(8, 32, 64), n_residual=4, separable=True,
                                                    upsample="shuffle"),
    "8-32-64, 4 res, separable, outer 3x3": NetConfig(channels=(8, 32, 64), n_residual=4, separable=True,
                                                      outer_kernel=3),
    "8-32-64, 4 res, separable, shuffle, outer 3x3": PRESETS["full8"],
    "8-32-64, 4 res, full 3x3, shuffle, outer 3x3": NetConfig(channels=(8, 32, 64), n_residual=4,
                                                              upsample="shuffle", outer_kernel=3),
    "half-res ends 16-32-64, 4 res, separable, shuffle, outer 3x3": PRESETS["fast"],
    "half-res ends 16-32-64, 4 res, separable, nearest, outer 3x3": NetConfig(
        channels=(16, 32, 64), n_residual=4, separable=True, outer_kernel=3, full_res=False),
    "half-res ends 16-32-96, 4 res, separable, shuffle, outer 3x3": NetConfig(
        channels=(16, 32, 96), n_residual=4, separable=True, upsample="shuffle", outer_kernel=3, full_res=False),
    "half-res ends 16-32-128, 4 res, separable, shuffle, outer 3x3": NetConfig(
        channels=(16, 32, 128), n_residual=4, separable=True, upsample="shuffle", outer_kernel=3, full_res=False),
    "half-res ends 16-48-96, 5 res, separable, shuffle, outer 3x3": NetConfig(
        channels=(16, 48, 96), n_residual=5, separable=True, upsample="shuffle", outer_kernel=3, full_res=False),
    "half-res ends 24-48-96, 5 res, separable, shuffle, outer 5x5": NetConfig(
        channels=(24, 48, 96), n_residual=5, separable=True, upsample="shuffle", outer_kernel=5, full_res=False),
}


def macs(net: StyleNet, size: int) -> int:
    """Multiply-adds of the convolutions for one ``size`` x ``size`` image (norms and pads left out)."""
    total = 0

    def count(module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        k_h, k_w = module.kernel_size
        total += output.numel() * (module.in_channels // module.groups) * k_h * k_w

    hooks = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        net(torch.rand(1, 3, size, size), 0)
    for hook in hooks:
        hook.remove()
    return total


def session(graph: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--only", default="", help="candidate names separated by semicolons (default: all)")
    args = parser.parse_args()
    names = [n for n in CANDIDATES if not args.only or n in args.only.split(";")]
    if "small" not in names:
        names.insert(0, "small")
    torch.manual_seed(0)
    image = np.random.default_rng(0).random((1, 3, args.size, args.size), dtype=np.float32)
    style = np.eye(N_STYLES, dtype=np.float32)[:1]
    with tempfile.TemporaryDirectory() as tmp:
        graphs, counts, params = {}, {}, {}
        for name in names:
            net = StyleNet(replace(CANDIDATES[name], n_styles=N_STYLES)).eval()
            counts[name] = macs(net, args.size)
            params[name] = sum(p.numel() for n, p in net.named_parameters() if "norm" not in n)
            graphs[name] = Path(tmp) / f"{len(graphs)}.onnx"
            export_onnx(Checkpoint(net=net, styles=[f"s{i}" for i in range(N_STYLES)]), graphs[name])
        for threads in (int(t) for t in args.threads.split(",")):
            sessions = {name: session(graphs[name], threads) for name in names}
            for s in sessions.values():  # warm-up
                s.run(["stylized"], {"image": image, "style": style})
            times: dict[str, list[float]] = {name: [] for name in names}
            for _ in range(args.rounds):
                for name in names:
                    start = time.perf_counter()
                    sessions[name].run(["stylized"], {"image": image, "style": style})
                    times[name].append(time.perf_counter() - start)
            print(f"\n{args.size} px, {threads} thread(s), {args.rounds} interleaved rounds")
            print("| candidate | GMAC | conv params | ORT s (median) | time / small (median of rounds) |")
            print("|---|---|---|---|---|")
            for name in names:
                ratio = statistics.median(t / s for t, s in zip(times[name], times["small"]))
                print(f"| {name} | {counts[name] / 1e9:.1f} | {params[name] / 1e3:.0f} k "
                      f"| {statistics.median(times[name]):.3f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
