"""Every default and every fact of the architecture, written once, without torch.

One package, read as one module (``from stylize.config import ...``): :mod:`.network` holds the
architecture, :mod:`.apply` the defaults of applying, :mod:`.new_style` those of learning a new
style's row, :mod:`.train` those of training. A part is loaded when one of its names is first
asked for, so ``stylize apply`` never loads the training settings.

Plain dataclasses and constants, so that the command line shows each default in its
``--help`` from here (and ``stylize --help`` stays fast), and the library takes them from
here too: nothing restates a number that lives here. The settings are frozen and checked
on creation. A checkpoint stores its :class:`NetConfig` and :class:`TrainSettings`, and
:meth:`TrainSettings.from_dict` is the one way back from that metadata, with changes.
"""

from __future__ import annotations

import importlib
from typing import Any

PARTS = {
    "network": ("ALIGN", "MIN_SIZE", "NetConfig", "PRESETS", "check_size"),
    "apply": ("AUTO_TILE_ONNX", "AUTO_TILE_OTHER", "ApplySettings", "BACKENDS", "BatchOptions", "CUDA_FAST_PATH",
              "DEFAULT_CRF", "DEFAULT_MAX_PIXELS", "DEFAULT_QUALITY", "DEFAULT_SMOOTHING", "DEVICE_KINDS",
              "EDGE_BORDER", "PRECISIONS", "SHEET_CELL", "SHEET_MAX_COLUMNS", "VideoSettings", "WORK_SIZE",
              "check_device_name", "check_max_pixels", "check_quality"),
    "new_style": ("ADD_STEPS", "QUICK_CPU", "QUICK_GPU", "STYLE_LR"),
    "train": ("DistillSettings", "EVALUATE_BUDGETS", "EVALUATE_SIZE", "LAYERS", "LossWeights", "TrainSettings",
              "cosine_lr"),
}
"""The names this package gives, by the part that defines them."""

_PART_OF = {name: part for part, names in PARTS.items() for name in names}
__all__ = sorted(_PART_OF)


def __getattr__(name: str) -> Any:
    """One of the parts' names, loading its part on first use (PEP 562)."""
    part = _PART_OF.get(name)
    if part is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{part}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PART_OF))
