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
  saturated or constant is not a picture (:func:`stylize.io.style_cache.broken_rendering`,
  the check a cached style passes on either backend).

What to do then (go back to :meth:`RowGuard.restore`'s rows and continue at a lower rate)
is the caller's choice; see :func:`stylize.train.finetune.fit_new_rows`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..io.style_cache import broken_rendering, probe
from ..model.network import StyleNet
from .loop import TrainingDiverged

LOSS_LIMIT = 10.0
"""A step's loss this many times its best so far is divergence (batches differ by ~2x; a run away by ~300x)."""


@torch.no_grad()
def style_breaks(net: StyleNet, style: int, painting: Tensor) -> str | None:
    """Why style ``style`` of ``net`` does not render ``painting`` (3,H,W) as a picture; ``None`` if it does."""
    squeezed = torch.from_numpy(probe(painting.detach().float().cpu().numpy()))
    return broken_rendering(net(squeezed.to(next(net.parameters()).device), style).float().cpu().numpy())


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
