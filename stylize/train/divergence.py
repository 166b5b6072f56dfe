"""Divergence while learning new style rows: notice it, keep the last good rows, never keep broken ones.

A style learned on a frozen network is a few thousand (gamma, beta) numbers, and the
output is a sigmoid: when they run away, every pixel saturates (issue 29's solid blue
square), the gradient vanishes, and the loss sits ~300x above where it began for good.
So :class:`RowGuard` watches two things and raises
:class:`~stylize.train.loop.TrainingDiverged` on either:

* each step's loss (already agreed across torchrun ranks), against the best seen so far:
  a loss :data:`LOSS_LIMIT` times above it is a run away, not the noise of one batch;
  every step that passes keeps a copy of the rows as the last good state;
* before any rows are written (a checkpoint, the cache), the new style rendered on its
  own painting (the same on every rank, and always at hand): a rendering that is all
  saturated or constant is not a picture.

What to do then (go back to :meth:`RowGuard.restore`'s rows and continue at a lower rate)
is the caller's choice; see :func:`stylize.train.finetune.fit_new_rows`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..model.network import StyleNet
from .loop import TrainingDiverged

LOSS_LIMIT = 10.0
"""A step's loss this many times its best so far is divergence (batches differ by ~2x; a run away by ~300x)."""

SATURATED_SHARE = 0.98
"""A rendering with at least this share of its values at 0 or 1 (to 8 bits) is saturated."""

PROBE_SIZE = 64
"""Side of the (squeezed) painting rendered to check the rows: enough to tell a picture from a flat one."""


def broken_rendering(image: Tensor) -> str | None:
    """Why ``image`` ((N,3,H,W) in [0, 1]) is not a picture: saturated or constant; ``None`` if it is one."""
    image = image.detach().float()
    if not math.isfinite(image.sum().item()):
        return "its rendering is not finite"
    saturated = ((image <= 1 / 255) | (image >= 254 / 255)).float().mean().item()
    if saturated >= SATURATED_SHARE:
        return f"its rendering is saturated ({saturated:.0%} of the values at 0 or 255)"
    if image.std(dim=(-2, -1)).max().item() < 0.5 / 255:
        return "its rendering is one flat colour"
    return None


def probe(painting: Tensor) -> Tensor:
    """``painting`` (3,H,W in [0, 1]) squeezed to (1,3,:data:`PROBE_SIZE`,:data:`PROBE_SIZE`): what a style's check renders.

    Its own painting is at hand wherever a style is learned or read back, and it is the
    same on every torchrun rank, so every rank reaches the same verdict.
    """
    return F.interpolate(painting[None].float(), size=(PROBE_SIZE, PROBE_SIZE), mode="bilinear", antialias=True,
                         align_corners=False)


@torch.no_grad()
def style_breaks(net: StyleNet, style: int, painting: Tensor) -> str | None:
    """Why style ``style`` of ``net`` does not render ``painting`` (3,H,W) as a picture; ``None`` if it does."""
    return broken_rendering(net(probe(painting).to(next(net.parameters()).device), style))


class RowGuard:
    """Watches the rows ``first:`` of ``params`` (the new styles of ``net``) while they are learned.

    ``paintings`` (3,H,W in [0, 1], one per new style) are the probes of
    :meth:`check_weights`. The rows at construction, those of ``step``, are the first good state.
    """

    def __init__(self, net: StyleNet, params: list[nn.Parameter], first: int, paintings: list[Tensor],
                 step: int = 0) -> None:
        self.net, self.params, self.first = net, params, first
        self.paintings = paintings
        self.best = math.inf
        self.good_step = step
        self.good = self._rows()
        self.reason = ""

    def _rows(self) -> list[Tensor]:
        return [p.detach()[self.first:].clone() for p in self.params]

    def _fail(self, reason: str) -> None:
        self.reason = reason
        raise TrainingDiverged(reason)

    def check_loss(self, step: int, losses: dict[str, float]) -> None:
        """``losses`` were measured on the rows as they are after ``step`` steps: keep them, or raise."""
        total = losses["total"]
        if total > LOSS_LIMIT * self.best:
            self._fail(f"the loss jumped to {total:.3g} after step {step}, over {LOSS_LIMIT:g}x its best "
                       f"{self.best:.3g}")
        self.best = min(self.best, total)
        self.good_step, self.good = step, self._rows()

    def check_weights(self, step: int) -> None:
        """Raise unless every new style renders its painting as a picture (called before rows are written)."""
        for i, painting in enumerate(self.paintings):
            why = style_breaks(self.net, self.first + i, painting)
            if why is not None:
                self._fail(f"the new style diverged by step {step}: {why}")

    def restore(self) -> int:
        """Put the last good rows back (the earlier rows and the shared weights were never changed); their step."""
        with torch.no_grad():
            for param, rows in zip(self.params, self.good):
                param[self.first:] = rows
        return self.good_step
