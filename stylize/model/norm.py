"""Instance normalization and its conditional (multi-style) form.

Instance normalization (Ulyanov et al. 2016) normalizes every (sample, channel) feature
map by its own mean and variance over H and W. That erases the photo's own contrast and
brightness, which is what lets a style network paint a new style on top. Conditional
instance normalization (Dumoulin et al. 2017) follows it with one learned (gamma, beta)
pair per style, so a single network holds many styles and mixes them by blending pairs.

Statistics are always computed per image, at training and at test time (there are no
running statistics), and always in fp32 even under bf16/fp16 autocast, because a
variance in half precision loses the small differences that carry the content.

For tiled inference the statistics can be *recorded* on one pass and *reused* on
another (see :class:`NormStats`), so that every tile is normalized with the statistics
of the whole image instead of its own, which would give tiles different colours.

The module's forward is the plain formula (with the normalization and the style's affine
folded into one per-channel scale and shift). :func:`conditional_instance_norm` computes
the same thing with PyTorch's batch norm kernel applied per image: statistics in two
exact fp32 passes (mean, then the centred variance), and normalization, gamma and beta
folded into one per-(sample, channel) ``x * scale + shift`` written in one pass, in
whatever memory layout the input has (channels-last included). It is autograd-aware;
:mod:`stylize.model.engine` uses it for inference and training.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

EPS = 1e-5


def moments(x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-(sample, channel) mean and biased variance over H, W, in fp32."""
    var, mean = torch.var_mean(x.float(), dim=(2, 3), keepdim=True, unbiased=False)
    return mean, var


def instance_norm(x: Tensor, stats: tuple[Tensor, Tensor] | None = None, eps: float = EPS) -> Tensor:
    """Normalize ``x`` (N, C, H, W) by its own statistics, or by ``stats`` when given."""
    mean, var = moments(x) if stats is None else stats
    return ((x.float() - mean) * torch.rsqrt(var + eps)).to(x.dtype)


class NormStats:
    """Statistics of every norm layer of a network, recorded on one pass, reused on others.

    Recording stores one (mean, var) pair per layer call, in call order; replaying hands
    them back in the same order. Tiling uses it: record on the whole image (or a
    downscaled copy of it), then replay for every tile.
    """

    def __init__(self) -> None:
        self.pairs: list[tuple[Tensor, Tensor]] = []
        self.replaying = False
        self._cursor = 0

    def take(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Record the statistics of ``x``, or hand back the next recorded pair."""
        if not self.replaying:
            return self.record(*moments(x))
        pair = self.pairs[self._cursor]
        self._cursor = (self._cursor + 1) % len(self.pairs)
        return pair

    def record(self, mean: Tensor, var: Tensor) -> tuple[Tensor, Tensor]:
        """Append statistics computed elsewhere ((N, C, 1, 1) fp32 mean and biased variance)."""
        pair = (mean, var)
        self.pairs.append(pair)
        return pair

    def replay(self) -> "NormStats":
        """Switch from recording to replaying; returns self for chaining."""
        self.replaying = True
        self._cursor = 0
        return self


class BlendedStats(NormStats):
    """Recording statistics pulled toward prior ones: ``own * (1 - weight) + prior * weight``.

    ``prior`` holds one (mean, var) pair per norm layer, in call order (another pass's
    :attr:`NormStats.pairs`). ``weight`` 0 records the image's own statistics, 1 the prior's
    exactly; in between, when each video frame's prior is the previous frame's recording,
    the statistics are an exponential moving average over frames, which steadies the
    colours that per-frame instance norm makes flicker. The layers normalize with what is
    recorded, so every later layer sees the blended activations. ``weight`` may be a
    tensor (the ONNX export feeds it as a graph input).
    """

    def __init__(self, prior: Sequence[tuple[Tensor, Tensor]] | None, weight: float | Tensor) -> None:
        super().__init__()
        self.prior = prior
        self.weight = weight

    def record(self, mean: Tensor, var: Tensor) -> tuple[Tensor, Tensor]:
        if self.prior is not None:
            prior_mean, prior_var = self.prior[len(self.pairs)]
            keep = 1 - self.weight
            mean = mean * keep + prior_mean * self.weight
            var = var * keep + prior_var * self.weight
        return super().record(mean, var)


class ConditionalInstanceNorm2d(nn.Module):
    """Instance norm followed by a per-style affine transform.

    ``weight`` and ``bias`` have one row per style. The forward pass takes per-sample
    style weights (N, n_styles): a one-hot row selects a style, any other convex
    combination mixes styles by mixing their (gamma, beta) pairs.
    """

    def __init__(self, channels: int, n_styles: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n_styles, channels))
        self.bias = nn.Parameter(torch.zeros(n_styles, channels))
        self.stats: NormStats | None = None

    @property
    def n_styles(self) -> int:
        return self.weight.shape[0]

    def affine(self, style: Tensor) -> tuple[Tensor, Tensor]:
        """Per-sample (gamma, beta), each (N, C) fp32, for style weights (N, n_styles).

        Outside autocast: under it these matmuls would come out in half precision.
        """
        with torch.autocast(style.device.type, enabled=False):
            style = style.to(self.weight.dtype)
            return style @ self.weight, style @ self.bias

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        """Normalize ``x`` by its own statistics (or the shared ones) and apply each sample's style.

        ``(x - mean) / std * gamma + beta`` folded into one per-channel ``x * scale + shift``:
        one multiply-add per pixel instead of four passes over the feature map, in the
        ONNX graph exported from this forward too.
        """
        mean, var = moments(x) if self.stats is None else self.stats.take(x)
        gamma, beta = self.affine(style)
        scale = gamma[:, :, None, None] * torch.rsqrt(var + EPS)
        shift = beta[:, :, None, None] - mean * scale
        return (x.float() * scale + shift).to(x.dtype)


def conditional_instance_norm(x: Tensor, gamma: Tensor, beta: Tensor, stats: NormStats | None = None, *,
                              relu: bool = False, eps: float = EPS) -> Tensor:
    """``instance_norm(x) * gamma + beta`` (then ReLU if asked), fast, in ``x``'s dtype and layout.

    ``gamma`` and ``beta`` are (N, C) fp32. With ``stats`` recording, the statistics are
    appended to it; replaying, they are taken from it instead of from ``x``. Uses the
    batch-norm kernel on each image (batch norm over a batch of one *is* instance norm):
    statistics are fp32 and exact (two passes), the output is one fused pass.
    """
    n, c = x.shape[:2]
    gamma, beta = gamma.float(), beta.float()
    if stats is not None and stats.replaying:
        mean, var = stats.take(x)
        y = _batch_norm_per_image(x, gamma, beta, (mean, var), eps)
    elif stats is not None:
        y, mean, invstd = _batch_norm_per_image(x, gamma, beta, None, eps)
        var = (invstd.pow(-2) - eps).clamp_min(0.0)
        # Normalize this pass with the eval-mode formula from the recorded pair (which a
        # BlendedStats may have changed), exactly as the replaying passes will, so that
        # recorded and replayed passes agree bit for bit.
        used = stats.record(mean.reshape(n, c, 1, 1), var.reshape(n, c, 1, 1))
        y = _batch_norm_per_image(x, gamma, beta, used, eps)
    else:
        y = _batch_norm_per_image(x, gamma, beta, None, eps)[0]
    # In place is safe under autograd: batch norm's backward does not need its output.
    return y.relu_() if relu else y


def group_instance_norm(x: Tensor, gamma: Tensor, beta: Tensor, *, relu: bool = False, eps: float = EPS) -> Tensor:
    """:func:`conditional_instance_norm` without statistics sharing, as ``group_norm`` with a group per channel.

    One image, or a batch in NCHW memory seen as one image of N*C channels (a view), takes
    the per-image (gamma, beta) as ``group_norm``'s own affine: one kernel, statistics
    accumulated in fp32 by it. A channels-last batch needs a second pass for the affine.
    No branch depends on values, so CUDA graphs and ``torch.compile`` can take it whole.
    Outside autocast, which would give ``group_norm`` an fp32 output.
    """
    n, c, h, w = x.shape
    gamma, beta = gamma.to(x.dtype), beta.to(x.dtype)
    with torch.autocast(x.device.type, enabled=False):
        if n == 1 or x.is_contiguous():
            y = F.group_norm(x.reshape(1, n * c, h, w), n * c, gamma.reshape(-1), beta.reshape(-1), eps)
            y = y.reshape(n, c, h, w)
        else:
            y = torch.addcmul(beta[:, :, None, None], F.group_norm(x, c, None, None, eps), gamma[:, :, None, None])
    return y.relu_() if relu else y


def formula_instance_norm(x: Tensor, gamma: Tensor, beta: Tensor, *, relu: bool = False, eps: float = EPS) -> Tensor:
    """The norm, affine and ReLU written as plain tensor arithmetic, for ``torch.compile`` to fuse.

    Statistics in fp32 as everywhere here; eager, this is several passes, compiled a
    reduction and one pointwise kernel (:class:`stylize.model.engine.FastStyleNet`, norm ``compiled``).
    """
    var, mean = torch.var_mean(x.float(), dim=(2, 3), keepdim=True, correction=0)
    scale = gamma.float()[:, :, None, None] * torch.rsqrt(var + eps)
    y = x.float() * scale + (beta.float()[:, :, None, None] - mean * scale)
    return (y.relu() if relu else y).to(x.dtype)


def _batch_norm_per_image(x: Tensor, gamma: Tensor, beta: Tensor, pair: tuple[Tensor, Tensor] | None,
                          eps: float):
    """Batch norm of every image on its own: with ``pair`` = (mean, var) given, returns the output;
    otherwise (output, mean, invstd) from the image's own statistics, mean and invstd (N, C) fp32."""
    n, c, h, w = x.shape
    if n == 1 or x.is_contiguous():
        # NCHW: a batch of N images with C channels is one image with N*C channels (a view).
        # Channels-last with N == 1 needs no view at all.
        groups = [(x.reshape(1, n * c, h, w) if n > 1 else x, slice(None))]
    else:
        groups = [(x[i:i + 1], slice(i, i + 1)) for i in range(n)]
    if pair is not None:
        mean, var = (t.float().reshape(n, c) for t in pair)
    outputs, means, invstds = [], [], []
    for xi, rows in groups:
        g, b = gamma[rows].reshape(-1), beta[rows].reshape(-1)
        if pair is not None:
            outputs.append(torch.batch_norm(xi, g, b, mean[rows].reshape(-1), var[rows].reshape(-1),
                                            False, 0.0, eps, True))
            continue
        y, m, invstd = torch.native_batch_norm(xi, g, b, None, None, True, 0.0, eps)
        outputs.append(y)
        means.append(m)
        invstds.append(invstd)
    y = outputs[0].reshape(n, c, h, w) if len(outputs) == 1 else torch.cat(outputs)
    if pair is not None:
        return y
    return y, torch.cat(means).float().reshape(n, c), torch.cat(invstds).float().reshape(n, c)


@contextmanager
def shared_stats(module: nn.Module, stats: NormStats) -> Iterator[NormStats]:
    """Make every conditional norm in ``module`` record into / replay from ``stats``."""
    norms = [m for m in module.modules() if isinstance(m, ConditionalInstanceNorm2d)]
    for norm in norms:
        norm.stats = stats
    try:
        yield stats
    finally:
        for norm in norms:
            norm.stats = None
