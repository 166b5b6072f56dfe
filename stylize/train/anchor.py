"""A teacher's rendering as a second target while a student trains under the perceptual loss.

A student distilled from a teacher (:mod:`stylize.train.distill`) and then fine-tuned under
the VGG loss alone learns texture however its network makes it most cheaply: the ``fast``
network's pixel-shuffle stages painted a regular grid into flat skies
(``models/stylize-22-fast/README.md``). The teacher paints no grid, so the distillation loss
against the teacher's rendering of the same crop in the same style, kept beside the
perceptual terms, holds the student near what the teacher paints while the perceptual loss
asks for the strokes.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from ..config import DistillSettings, TrainSettings
from ..errors import StylizeError
from ..model.engine import FastStyleNet
from .loss import distill_loss
from .resume import load_initial


class TeacherAnchor(nn.Module):
    """``loss`` plus ``weight`` x the distillation loss against ``teacher``'s rendering, as the term ``teacher``.

    ``rows[i]`` is the network's style index of the loss's i-th painting, the same in
    teacher and student (:func:`load_teacher` checks they hold the same styles in order).
    """

    def __init__(self, loss: nn.Module, teacher: nn.Module, rows: Tensor, weight: float,
                 gradient_weight: float = DistillSettings.gradient_weight) -> None:
        super().__init__()
        self.loss, self.teacher, self.weight, self.gradient_weight = loss, teacher, weight, gradient_weight
        self.register_buffer("rows", rows.clone())

    def forward(self, output: Tensor, photo: Tensor, style: Tensor, per_sample: bool = False) -> dict[str, Tensor]:
        terms = self.loss(output, photo, style, per_sample=per_sample)
        with torch.no_grad():
            target = self.teacher(photo, self.rows[style]).float()
        terms["teacher"] = self.weight * distill_loss(output, target, self.gradient_weight)["loss"]
        terms["total"] = terms["total"] + terms["teacher"]
        return terms


def load_teacher(settings: TrainSettings, styles: list[str]) -> nn.Module | None:
    """The teacher of ``settings`` (checked to hold ``styles`` in order), frozen, as a renderer;
    None when the run has none. A teacher needs a weight and a weight a teacher."""
    path, weight = settings.teacher, settings.weights.teacher
    if not path and not weight:
        return None
    if not path:
        raise StylizeError("--teacher-weight needs --teacher MODEL: the model whose renderings to stay near")
    if not weight:
        raise StylizeError("--teacher needs a --teacher-weight above 0")
    if not Path(path).is_file():  # a resumed run names it from its checkpoint: read files only
        raise StylizeError(f"--teacher: {path} is not a model file")
    teacher = FastStyleNet(load_initial(Path(path), styles, "--teacher").net).eval()
    return teacher.requires_grad_(False)
