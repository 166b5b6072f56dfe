"""CUDA graphs for repeated inference shapes (a batch folder of same-size photos, video frames).

At 1024x1024 on a large GPU one forward pass is a few milliseconds spread over ~100
kernels, so the CPU time to launch them (Python, autocast, the dispatcher) becomes a
large share of the pass. A CUDA graph records the kernels once and replays them with one
launch. :class:`GraphedStyleNet` does that per input shape, keeping a few graphs:

>>> fast = GraphedStyleNet(net, dtype=torch.float16)   # net on CUDA, eval mode
>>> out = fast(x, weights)                             # first call of a shape: eager + capture
>>> out = fast(x2, weights2)                           # same shape: one graph replay

It falls back to the eager forward (same results) whenever a graph does not apply: not
on CUDA, gradients enabled, norm statistics being recorded or replayed (tiling), or the
capture failing; so it is safe to use unconditionally.

STATUS: written without a GPU at hand (the development machine had none); the CPU
fallback is tested, the capture path is pending a GPU session (see benchmarks/README.md).
"""

from __future__ import annotations

from collections import OrderedDict
from contextlib import nullcontext

import torch
from torch import Tensor, nn

from .norm import ConditionalInstanceNorm2d


class GraphedStyleNet:
    """Calls ``net(x, weights)`` through CUDA graphs captured per (shape, dtype) of the inputs.

    ``net`` is a :class:`~stylize.network.StyleNet` or its :class:`~stylize.engine.FastStyleNet`;
    ``weights`` must be the float (N, n_styles) mixing weights (as :class:`stylize.Stylizer`
    passes them); ``dtype`` is the autocast dtype (``None``: fp32). Returns a fresh tensor
    (the graph's own output buffer is reused by the next replay).
    """

    def __init__(self, net: nn.Module, dtype: torch.dtype | None = None, max_graphs: int = 4,
                 warmup: int = 2) -> None:
        self.net = net
        self.dtype = dtype
        self.max_graphs = max_graphs
        self.warmup = warmup
        self._graphs: OrderedDict[tuple, tuple[torch.cuda.CUDAGraph, Tensor, Tensor, Tensor]] = OrderedDict()
        self._failed: set[tuple] = set()

    def _autocast(self, device_type: str):
        # The autocast weight cache must be off while capturing: cached casts made during
        # capture would be freed memory on replay.
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(device_type, dtype=self.dtype, cache_enabled=False)

    def _eager(self, x: Tensor, weights: Tensor) -> Tensor:
        with self._autocast(x.device.type):
            return self.net(x, weights)

    def _graphable(self, x: Tensor, weights: Tensor) -> bool:
        if not (x.is_cuda and weights.is_cuda) or torch.is_grad_enabled() or self.net.training:
            return False
        if not weights.is_floating_point() or weights.ndim != 2:
            return False
        return not any(m.stats is not None for m in self.net.modules() if isinstance(m, ConditionalInstanceNorm2d))

    def __call__(self, x: Tensor, weights: Tensor) -> Tensor:
        if not self._graphable(x, weights):
            return self._eager(x, weights)
        key = (tuple(x.shape), x.dtype, tuple(weights.shape), weights.dtype, x.device)
        if key in self._failed:
            return self._eager(x, weights)
        entry = self._graphs.get(key)
        if entry is None:
            try:
                entry = self._capture(x, weights)
            except RuntimeError:  # capture not possible here: stay eager for this shape
                self._failed.add(key)
                torch.cuda.synchronize(x.device)
                return self._eager(x, weights)
            self._graphs[key] = entry
            while len(self._graphs) > self.max_graphs:
                self._graphs.popitem(last=False)
        else:
            self._graphs.move_to_end(key)
        graph, static_x, static_w, static_out = entry
        static_x.copy_(x)
        static_w.copy_(weights)
        graph.replay()
        return static_out.clone()

    def _capture(self, x: Tensor, weights: Tensor) -> tuple:
        static_x, static_w = x.clone(), weights.clone()
        stream = torch.cuda.Stream(device=x.device)
        stream.wait_stream(torch.cuda.current_stream(x.device))
        with torch.cuda.stream(stream):  # warm up outside the graph (cuDNN autotuning, allocations)
            for _ in range(self.warmup):
                self._eager(static_x, static_w)
        torch.cuda.current_stream(x.device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = self._eager(static_x, static_w)
        return graph, static_x, static_w, static_out
