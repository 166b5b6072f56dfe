"""The settings new style rows are learned with (``add-style``, ``--style-image``), told without PyTorch.

A cached ``--style-image`` style is found by a key over these settings
(:mod:`stylize.io.style_cache`), so the renderer that never imports PyTorch must compute
them exactly as the learner does: both call :func:`quick_settings` here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..config import QUICK_CPU, QUICK_GPU, TrainSettings


@dataclass(frozen=True)
class Overrides:
    """Settings the user changed; ``None`` keeps the default (the model's own, see callers)."""

    steps: int | None = None
    lr: float | None = None
    style_weight: float | None = None
    image_size: int | None = None
    batch_size: int | None = None
    style_size: int | None = None
    workers: int | None = None
    precision: str | None = None

    def apply(self, base: TrainSettings) -> TrainSettings:
        """``base`` with every given override (see :meth:`TrainSettings.changed`)."""
        return base.changed(**dataclasses.asdict(self))


def new_row_settings(training: dict, **changes) -> TrainSettings:
    """A model's stored settings (``training``), for new style rows, with ``changes``.

    The optimizer of new rows starts fresh at step 0, so the model's own warm-up (a
    released run continued from a late step stores that step in ``warmup_from``) does not
    carry over: Adam's first steps on a few thousand numbers are bounded by the rate anyway.
    """
    return TrainSettings.from_dict(training, warmup_steps=0, warmup_from=0, **changes)


def quick_settings(training: dict, device_type: str, overrides: Overrides = Overrides()) -> TrainSettings:
    """On-the-fly settings on a device of ``device_type`` (``cpu``, ``cuda``...): the model's own
    (``training``), with :data:`QUICK_CPU` or :data:`QUICK_GPU` sizes, then ``overrides``."""
    quick = QUICK_CPU if device_type == "cpu" else QUICK_GPU
    return overrides.apply(new_row_settings(training, **quick))
