"""stylize: fast neural style transfer with conditional instance normalization.

>>> from stylize import Stylizer
>>> Stylizer.load("styles.safetensors").apply("photo.jpg", style="starry").save("out.jpg")

The public names are imported on first use (module ``__getattr__``), so ``import
stylize`` stays cheap: torch is only loaded when a stylizer is.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

DISTRIBUTION = "stylize-cin"
"""The project's name on PyPI (``pip install stylize-cin``); the import name and the command
stay ``stylize``, because PyPI's ``stylize`` is an unrelated code formatter. Install hints
use this name; ``pyproject.toml`` must say the same (a test checks)."""

_EXPORTS = {
    "Stylizer": "stylize.apply.torch_backend",
    "ApplySettings": "stylize.config",
    "ApplyJob": "stylize.apply.job",
    "StylizeError": "stylize.errors",
}

__all__ = ["ApplyJob", "ApplySettings", "StylizeError", "Stylizer", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'stylize' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
