"""Continuing a run: what a saved run must hold to go on, and a released model to start from."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..config import PRESETS, NetConfig, TrainSettings
from ..errors import StylizeError
from ..model import checkpoint as ckpt_io


def check_resumable(previous: ckpt_io.Checkpoint, output: Path, styles: list[str]) -> None:
    """The interrupted run saved in ``output`` must hold ``styles`` and its optimizer state."""
    if previous.styles != styles:
        raise StylizeError(f"--resume: {output} was trained on styles {previous.styles}, "
                           f"but this run holds styles {styles}")
    if previous.optimizer_state is None:
        raise StylizeError(f"--resume: {output} holds no optimizer state (it was exported for inference)")


def load_initial(path: Path, styles: list[str], option: str = "--init-from") -> ckpt_io.Checkpoint:
    """A released model to continue from (its network, step and styles' work sizes), or to learn
    beside (``option``: the command-line option that named it), checked to hold ``styles`` in order."""
    previous = ckpt_io.load(path)
    if previous.styles != styles:
        missing = sorted(set(styles) ^ set(previous.styles))
        detail = f"styles differ: {', '.join(missing)}" if missing else "the styles are in another order"
        raise StylizeError(f"{option}: {path} does not hold this folder's styles ({detail})")
    return previous


def preset_of(config: NetConfig) -> str:
    """The name of the preset ``config`` is built on: the record of a continued model must name
    its own architecture, not the ``--preset`` default of the command that continued it."""
    for name, preset in PRESETS.items():
        if dataclasses.replace(preset, n_styles=config.n_styles) == config:
            return name
    raise StylizeError(f"the model's architecture ({config.to_dict()}) matches no preset: {', '.join(PRESETS)}")


def check_steps_left(step: int, settings: TrainSettings, source: Path, option: str) -> None:
    """A continued run must have steps left to do."""
    if step >= settings.steps:
        raise StylizeError(f"{option}: {source} is already at step {step}; raise --steps to train further")
