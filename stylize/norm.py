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
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
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
            pair = moments(x)
            self.pairs.append(pair)
            return pair
        pair = self.pairs[self._cursor]
        self._cursor = (self._cursor + 1) % len(self.pairs)
        return pair

    def replay(self) -> "NormStats":
        """Switch from recording to replaying; returns self for chaining."""
        self.replaying = True
        self._cursor = 0
        return self


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

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        stats = None if self.stats is None else self.stats.take(x)
        normalized = instance_norm(x, stats)
        style = style.to(self.weight.dtype)
        gamma = (style @ self.weight)[:, :, None, None]
        beta = (style @ self.bias)[:, :, None, None]
        return (normalized * gamma + beta).to(x.dtype)


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
