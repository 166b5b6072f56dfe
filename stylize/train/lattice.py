"""A penalty on patterns locked to the network's pixel lattice: the grid a small student paints into flat skies.

Every preset halves the image twice on the way in and doubles it twice on the way out
(:data:`~stylize.config.network.ALIGN`), so each output pixel has one of 16 positions in its
4x4 cell, and the ``fast`` network's pixel-shuffle stages give each position its own channels.
Fine-tuned under the perceptual loss, such a network can meet the Gram matrices' demand for
texture most cheaply with a pattern that repeats every 4 pixels, the same in every cell
(``models/stylize-22-fast/README.md``, "Known weaknesses"). A painted stroke, a photo's own
texture or the teacher's output fall on the cells at random: averaged over the whole image,
each of the 16 positions then sees the same mean of the image's fine detail. The penalty is
how far those 16 means are apart, so it reaches the grid and leaves strokes alone.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..config.network import ALIGN


def lattice_energy(image: Tensor, period: int = ALIGN) -> Tensor:
    """Per sample (N,): the mean square over colours of the 16 cell positions' mean fine detail, less their average.

    Fine detail: ``image`` (N, C, H, W) minus its 5x5 box blur, so that a smooth gradient
    across the image does not count as a pattern. Zero for an image whose detail is the
    same on every cell position; the square of a grid's amplitude for a pure grid.
    """
    n, c, h, w = image.shape
    image = image[..., : h // period * period, : w // period * period].float()
    detail = image - F.avg_pool2d(F.pad(image, (2, 2, 2, 2), mode="reflect"), 5, stride=1)
    positions = F.pixel_unshuffle(detail, period).mean(dim=(-2, -1)).view(n, c, period * period)
    return (positions - positions.mean(dim=2, keepdim=True)).square().mean(dim=(1, 2))


class LatticePenalty(nn.Module):
    """``loss`` plus ``weight`` x the batch's mean :func:`lattice_energy` of the output, as the term ``lattice``."""

    def __init__(self, loss: nn.Module, weight: float) -> None:
        super().__init__()
        self.loss, self.weight = loss, weight

    def forward(self, output: Tensor, photo: Tensor, style: Tensor, per_sample: bool = False) -> dict[str, Tensor]:
        terms = self.loss(output, photo, style, per_sample=per_sample)
        terms["lattice"] = self.weight * lattice_energy(output).mean()
        terms["total"] = terms["total"] + terms["lattice"]
        return terms
