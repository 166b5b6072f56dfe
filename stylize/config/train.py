"""Defaults of learning: training, distilling, evaluating (a new style's row: :mod:`.new_style`)."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from ..checks import checked_fields
from ..errors import StylizeError
from .new_style import STYLE_LR

EVALUATE_SIZE = 256
"""Long side (px) of the test photos of ``stylize evaluate``: 256 as Johnson et al. compared."""

EVALUATE_BUDGETS = (50, 100, 300)
"""L-BFGS iteration budgets of ``stylize evaluate``'s Gatys baseline."""

LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
"""The loss network's taps, in order."""


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity where the OS has one (as torch's DataLoader counts them)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass(frozen=True)
class LossWeights:
    """Relative weights of the loss terms, the content layer and each style layer's share."""

    content: float = 1.0
    style: float = 2.0
    tv: float = 0.0
    teacher: float = 0.0
    """Weight of L1 (pixels and their differences) against a teacher's rendering (``TrainSettings.teacher``)."""
    lattice: float = 0.0
    """Weight of the penalty on patterns locked to the network's 4x4 cells (:mod:`stylize.train.lattice`)."""
    content_layer: str = "relu2_2"
    style_layers: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)

    EXTRA_TERMS: ClassVar[tuple[str, ...]] = ("teacher", "lattice")
    """Terms beside the perceptual loss, stored only when used so that runs without them keep
    their metadata and cache keys."""

    def __post_init__(self) -> None:
        if self.content_layer not in LAYERS:
            raise StylizeError(f"unknown content layer {self.content_layer!r}; choose one of {', '.join(LAYERS)}")
        layers = tuple(float(w) for w in self.style_layers)
        if len(layers) != len(LAYERS) or any(not math.isfinite(w) or w < 0 for w in layers):
            raise StylizeError(f"style layer weights must be {len(LAYERS)} non-negative numbers "
                               f"(one per {', '.join(LAYERS)}), got {list(self.style_layers)}")
        object.__setattr__(self, "style_layers", layers)

    @property
    def content_index(self) -> int:
        return LAYERS.index(self.content_layer)

    def to_dict(self) -> dict:
        """The weights as stored; the :attr:`EXTRA_TERMS` only when used."""
        data = asdict(self)
        data["style_layers"] = list(self.style_layers)
        for optional in self.EXTRA_TERMS:
            if not data[optional]:
                del data[optional]
        return data

    def perceptual_only(self) -> "LossWeights":
        """These weights without the :attr:`EXTRA_TERMS`: what an image optimised alone (a baseline) minimises."""
        return dataclasses.replace(self, **{term: 0.0 for term in self.EXTRA_TERMS})


@dataclass
class TrainSettings:
    """Everything that shapes a training run; stored in the checkpoint's metadata."""

    steps: int = 40_000
    batch_size: int = 16
    image_size: int = 256
    style_size: int = 512
    lr: float = 1e-3
    final_lr_fraction: float = 0.01
    warmup_steps: int = 0
    warmup_from: int = 0
    weights: LossWeights = field(default_factory=LossWeights)
    preset: str = "johnson"
    seed: int = 0
    checkpoint_every: int = 1000
    preview_every: int = 1000
    snapshot_every: int = 0
    """Keep a lean copy of the weights every N steps (0: none), to release an earlier state."""
    log_every: int = 10
    workers: int = min(4, usable_cores())
    """DataLoader processes: 4, or one per core where there are fewer (more would only wait, and torch warns)."""
    precision: str = "auto"
    flat_areas: float = 0.0
    """Share of the crops given a flat or clipped region (``stylize.train.data.flatten``): against blotches."""
    teacher: str = ""
    """The model whose renderings ``weights.teacher`` keeps a student near (kept, so ``--resume`` loads it again)."""

    def to_dict(self) -> dict:
        data = asdict(self)
        data["weights"] = self.weights.to_dict()
        if not self.teacher:  # as LossWeights.teacher: only when used
            del data["teacher"]
        return data

    @classmethod
    def from_dict(cls, data: dict, **changes: Any) -> "TrainSettings":
        """Settings stored in a checkpoint's metadata, with ``changes`` (as :meth:`changed` takes them).

        The one way from a checkpoint back to settings: keys that this version does not
        know are ignored, keys it misses take the defaults, values of the wrong type or out
        of range are refused (checkpoints are untrusted).
        """
        values = checked_fields(cls, data, "training settings")
        values["weights"] = LossWeights(**checked_fields(LossWeights, values.get("weights", {}), "loss weights"))
        return cls(**values).changed(**changes)

    def changed(self, style_weight: float | None = None, **changes: Any) -> "TrainSettings":
        """A copy with ``changes``; ``None`` changes nothing, ``style_weight`` only the style loss's weight."""
        given = {k: v for k, v in changes.items() if v is not None}
        if style_weight is not None:
            given["weights"] = dataclasses.replace(self.weights, style=style_weight)
        return dataclasses.replace(self, **given)

    def lr_at(self, step: int) -> float:
        """Cosine decay from ``lr`` to ``lr * final_lr_fraction`` over ``steps``.

        A linear warm-up over ``warmup_steps`` steps from ``warmup_from`` (where the optimizer
        started fresh: step 0, or the step of a released model training continues from)
        keeps Adam's first, poorly estimated steps from undoing what the weights know.
        """
        lr = cosine_lr(self.lr, self.final_lr_fraction, self.steps, step)
        if self.warmup_steps > 0:
            # Never below the first warm-up step's rate: a step before ``warmup_from`` (settings
            # carried over to a fresh optimizer) would otherwise get a negative rate, and Adam climb the loss.
            lr *= min(1.0, max(step - self.warmup_from + 1, 1) / self.warmup_steps)
        return lr


def cosine_lr(lr: float, final_fraction: float, steps: int, step: int) -> float:
    """Cosine decay from ``lr`` at step 0 to ``lr * final_fraction`` at ``steps`` (and after)."""
    progress = min(step / max(steps, 1), 1.0)
    floor = lr * final_fraction
    return floor + (lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class DistillSettings:
    """What shapes a distillation run (:mod:`stylize.train.distill`); stored in the student's checkpoint.

    Small crops and batches: on a CPU the step is the teacher's forward pass, which grows
    with the pixels, and many small steps teach more per hour than few large ones.
    """

    preset: str = "fast"
    steps: int = 200_000
    batch_size: int = 4
    image_size: int = 160
    resize: int = 320
    """Short side the photos are resized to before cropping: crops of a photo at the scale
    the network paints at (apply paints at 1024 px), not the whole photo shrunk."""
    lr: float = 1e-3
    style_lr: float = STYLE_LR
    """Learning rate of the styles' (gamma, beta) rows: each row learns from 1/22 of the
    samples only, and must travel O(1) from the identity (see :data:`STYLE_LR`)."""
    final_lr_fraction: float = 0.05
    gradient_weight: float = 1.0
    """Weight of the image-difference L1 (the strokes) beside the pixel L1."""
    seed: int = 0
    checkpoint_minutes: float = 5.0
    log_every: int = 10

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, **changes: Any) -> "DistillSettings":
        """Settings stored in a student's metadata (checked: checkpoints are untrusted), with ``changes``."""
        return dataclasses.replace(cls(**checked_fields(cls, data, "distillation settings")), **changes)

    def decay_at(self, step: int) -> float:
        """The factor every learning rate is multiplied by at ``step``: a cosine from 1 to ``final_lr_fraction``."""
        return cosine_lr(1.0, self.final_lr_fraction, self.steps, step)
