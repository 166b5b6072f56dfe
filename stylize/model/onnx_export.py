"""The style network as one ONNX graph: every style, every mix, any size, tiles included.

ONNX Runtime runs the graph on CPUs, GPUs, in browsers (onnxruntime-web) and on phones,
without PyTorch. The graph is traced from :func:`graph_forward`: the textbook
forward (:meth:`~stylize.model.network.StyleNet.forward`) in plain ops that every runtime
has (pad, conv, slice, instance norm, resize), with one of the CPU engine's rewrites
that is plain ops too; none of the engine's NNPACK and layout tricks.

Inputs and outputs (``N`` images, ``S`` styles, ``C`` = the channels of all norm layers
together, :func:`norm_widths`):

============  =================  ==========================================================
input         shape              meaning
============  =================  ==========================================================
image         (N, 3, H, W) f32   RGB in [0, 1]; any H, W >= 8
style         (N, S) f32         mixing weights: one-hot for a style, a convex mix for a mix
prior_mean    (N|1, C) f32       optional (default zeros): statistics to normalize with ...
prior_var     (N|1, C) f32       ... per norm layer, concatenated in call order
prior_weight  () f32             optional (default 0): how much of the prior to use
============  =================  ==========================================================

Outputs: ``stylized`` (N, 3, H, W) in [0, 1], and ``mean`` and ``var`` (N, C), the
statistics each norm layer used. With ``prior_weight`` 0 (the default) the graph is the
plain network. Tiled rendering with whole-image statistics: run the whole image (or a
downscaled copy) once, then every tile with its ``mean`` and ``var`` as the prior and
``prior_weight`` 1. Video: feed each frame the previous frame's ``mean`` and ``var`` with
a weight in between, an exponential moving average (:class:`~stylize.model.norm.BlendedStats`).

The optional inputs are graph inputs with initializers (ONNX's overridable defaults).
The style names travel in the model's metadata (``styles``, a JSON list; ``config`` has
the architecture; ``work_sizes`` maps style names to the long side each is painted at by
default, :class:`~stylize.config.ApplySettings`), so one file is all an application needs.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Mapping

import torch
from torch import Tensor, nn

from .. import __version__
from ..errors import StylizeError
from ..io.atomic import write_atomically, write_failure
from ..runtime.extras import missing_extra
from .checkpoint import Checkpoint
from .engine import conv_by_rows
from .network import StyleNet
from .norm import BlendedStats, ConditionalInstanceNorm2d, shared_stats

OPSET = 17
"""ONNX opset of the export: ONNX Runtime 1.12 (2022) and onnxruntime-web run it."""

ROWS_BELOW = 8
"""A last convolution with fewer outputs than this is traced as rows (:func:`graph_forward`)."""

INPUTS = ("image", "style", "prior_mean", "prior_var", "prior_weight")
OUTPUTS = ("stylized", "mean", "var")

TRACE_SIZE = (37, 45)
"""The size traced with. Not multiples of 4, so that the network's own padding to a
multiple of 4 is traced as a (data-dependent, possibly zero) pad rather than left out."""


def norm_widths(net: StyleNet) -> list[int]:
    """The channels of every conditional norm layer, in call order (= module order)."""
    return [m.weight.shape[1] for m in net.modules() if isinstance(m, ConditionalInstanceNorm2d)]


class StatsGraph(nn.Module):
    """The textbook network with its norm statistics as inputs (a prior) and outputs."""

    def __init__(self, net: StyleNet) -> None:
        super().__init__()
        self.net = net
        self.widths = norm_widths(net)

    def forward(self, image: Tensor, style: Tensor, prior_mean: Tensor, prior_var: Tensor,
                prior_weight: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        prior, start = [], 0
        for width in self.widths:
            prior.append((prior_mean[:, start:start + width, None, None],
                          prior_var[:, start:start + width, None, None]))
            start += width
        with shared_stats(self.net, BlendedStats(prior, prior_weight)) as stats:
            out = graph_forward(self.net, image, style)
        if len(stats.pairs) != len(self.widths):
            raise StylizeError(f"the network ran {len(stats.pairs)} norm layers, expected {len(self.widths)}")
        mean = torch.cat([m.flatten(1) for m, _ in stats.pairs], 1)
        var = torch.cat([v.flatten(1) for _, v in stats.pairs], 1)
        return out, mean, var


def graph_forward(net: StyleNet, x: Tensor, style: Tensor) -> Tensor:
    """``net(x, style)`` with its last convolution in the shape ONNX Runtime runs fastest on a CPU.

    A convolution with few outputs (RGB) is padded to 16 outputs by ONNX Runtime's blocked
    layout, so most of its work is wasted; as :func:`~stylize.model.engine.conv_by_rows`
    (a 1xk convolution to ``k`` times the outputs, then a sum of shifted rows) it is the
    same arithmetic in plain ops. Every other layer is the textbook forward.
    """
    h, w = x.shape[-2:]
    x, weights = net.prepare(x, style)
    for layer in [*net.down, *net.res, *net.up]:
        x = layer(x, weights)
    x = net.out_pad(x)
    x = conv_by_rows(x, net.out_conv) if net.out_conv.out_channels < ROWS_BELOW else net.out_conv(x)
    return torch.sigmoid(net.output(x))[..., :h, :w]


def export_onnx(ckpt: Checkpoint, output: str | Path, metadata: Mapping[str, str] | None = None) -> None:
    """Write ``ckpt``'s network as an ONNX graph (see :func:`graph_bytes`), atomically."""
    data = graph_bytes(ckpt, metadata)
    try:
        write_atomically(output, data)
    except OSError as exc:
        raise StylizeError(f"cannot write {output}: {write_failure(exc, Path(output), len(data))}") from None


def graph_bytes(ckpt: Checkpoint, metadata: Mapping[str, str] | None = None) -> bytes:
    """``ckpt``'s network as a serialized ONNX graph (see the module docstring).

    ``metadata`` joins the graph's own (``styles``, ``config``...): the sha256 of the
    checkpoint it was made from, with which :mod:`stylize.apply.graphs` recognizes it. Needs
    the ``onnx`` package, which the exporter itself uses.
    """
    try:
        import onnx
    except ImportError:
        raise missing_extra("torch", "exporting to ONNX") from None
    net = ckpt.net.float().cpu().eval()
    graph = StatsGraph(net)
    channels = sum(graph.widths)
    h, w = TRACE_SIZE
    example = (torch.rand(1, 3, h, w), torch.full((1, net.n_styles), 1.0 / net.n_styles),
               torch.zeros(1, channels), torch.zeros(1, channels), torch.tensor(0.0))
    dynamic = {"image": {0: "batch", 2: "height", 3: "width"}, "style": {0: "batch"},
               "prior_mean": {0: "prior_batch"}, "prior_var": {0: "prior_batch"},
               "stylized": {0: "batch", 2: "height", 3: "width"}, "mean": {0: "batch"}, "var": {0: "batch"}}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of torch.export's, which needs
        # onnxscript; it traces this fixed-structure network exactly, and tracing warns
        # about the shape checks it folds away (the traced pad amounts stay symbolic).
        warnings.simplefilter("ignore")
        with torch.no_grad():
            torch.onnx.export(graph, example, buffer, input_names=list(INPUTS), output_names=list(OUTPUTS),
                              dynamic_axes=dynamic, opset_version=OPSET, dynamo=False, do_constant_folding=True)
    model = onnx.load_from_string(buffer.getvalue())
    _make_optional(model, {"prior_mean": example[2], "prior_var": example[3], "prior_weight": example[4]})
    onnx.helper.set_model_props(model, {"styles": json.dumps(ckpt.styles), "config": json.dumps(net.config.to_dict()),
                                        "work_sizes": json.dumps(ckpt.work_sizes),
                                        "norm_widths": json.dumps(graph.widths),
                                        "producer": f"stylize {__version__}", **(metadata or {})})
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _make_optional(model, defaults: dict[str, Tensor]) -> None:
    """Give graph inputs default values (initializers of the same name), which makes them optional."""
    from onnx import numpy_helper

    names = {i.name for i in model.graph.input}
    for name, value in defaults.items():
        if name not in names:
            raise StylizeError(f"the traced graph has no input {name!r}")
        model.graph.initializer.append(numpy_helper.from_array(value.numpy(), name))
