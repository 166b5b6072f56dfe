"""How :class:`stylize.Stylizer` runs its network for a :class:`~stylize.runtime.variants.FastPath`.

The network's function never changes; what changes is how it is launched:

* ``compile`` / ``compile-ro``: ``torch.compile`` of the engine, compiled per input shape on
  first use (seconds to minutes; worth it only for many photos of one size);
* ``graphs``: :class:`GraphRunner`, the eager engine captured once per input shape as a
  CUDA graph and replayed, which removes the per-kernel launch cost (a 1024 px pass is
  ~100 kernels of tens of microseconds each);
* ``bench``: :func:`cudnn_autotuned` around each pass.

Only the plain pass goes through these: a pass that records or replays norm statistics
(tiling, video smoothing) runs the engine eagerly, since its statistics are Python-side
state that a graph or a compiled function would freeze.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import Tensor

Network = Callable[[Tensor, Tensor], Tensor]

MAX_GRAPHS = 8
"""Input shapes captured per runner; later shapes run eagerly. Each graph keeps its output and
input buffers, and a folder of photos of many aspect ratios would otherwise keep one per photo."""


def fast_network(network: Network, compile_mode: str | None, cuda_graphs: bool) -> Network:
    """``network`` compiled, captured as CUDA graphs, or as it is."""
    if compile_mode is not None:
        return torch.compile(network, mode=compile_mode)
    if cuda_graphs:
        return GraphRunner(network)
    return network


@contextmanager
def cudnn_autotuned(enabled: bool = True) -> Iterator[None]:
    """cuDNN benchmarks its algorithms for each new convolution shape inside this block.

    The switch is process-wide in PyTorch, so it is set for the pass and put back after it,
    as the library changes no process-global state for longer than its own call.
    """
    if not enabled:
        yield
        return
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


@dataclass
class Captured:
    """One captured pass: its static buffers and the graph that reads and writes them."""

    x: Tensor
    weights: Tensor
    out: Tensor
    replay: Callable[[], None]


class GraphRunner:
    """``runner(x, weights)`` equals ``network(x, weights)``, replayed from one CUDA graph per input shape.

    A graph reads fixed addresses, so each shape has a static input and weights buffer that
    a call copies into before the replay, and the output is cloned at once: the next replay
    (of any graph) may overwrite it, since all graphs share one memory pool, which is safe
    because graphs run one at a time and no output buffer is read after another replay.
    The key holds the autocast state too: the fp32 retry of an overflowed half-precision
    pass (:meth:`stylize.Stylizer._forward`) is another graph.
    """

    def __init__(self, network: Network, warmup: int = 2) -> None:
        self.network = network
        self.warmup = warmup
        self.graphs: dict[tuple, Captured] = {}
        self.pool = None

    def __call__(self, x: Tensor, weights: Tensor) -> Tensor:
        key = (tuple(x.shape), x.dtype, tuple(weights.shape), weights.dtype, x.device,
               torch.is_autocast_enabled(x.device.type), torch.get_autocast_dtype(x.device.type))
        captured = self.graphs.get(key)
        if captured is None:
            if len(self.graphs) >= MAX_GRAPHS:
                return self.network(x, weights)
            captured = self.graphs[key] = self.capture(x.clone(), weights.clone())
        captured.x.copy_(x)
        captured.weights.copy_(weights)
        captured.replay()
        return captured.out.clone()

    def capture(self, x: Tensor, weights: Tensor) -> Captured:
        """Warm up on a side stream (cuDNN and allocator set-up must not be captured), then capture."""
        stream = torch.cuda.Stream(x.device)
        stream.wait_stream(torch.cuda.current_stream(x.device))
        with torch.cuda.stream(stream):
            for _ in range(self.warmup):
                self.network(x, weights)
        torch.cuda.current_stream(x.device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            out = self.network(x, weights)
        self.pool = graph.pool()
        return Captured(x, weights, out, graph.replay)
