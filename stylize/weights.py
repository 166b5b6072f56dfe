"""Where the shipped checkpoint lives, so ``stylize apply`` works without ``--model``."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import StylizeError

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
"""The project's ``weights/`` folder (the package is used from a checkout, ``pip install -e``)."""

DEFAULT_MODEL_NAME = "stylize-22.safetensors"


def default_model() -> Path:
    """``$STYLIZE_MODEL`` if set, else the shipped checkpoint in ``weights/``, else a clear error."""
    chosen = os.environ.get("STYLIZE_MODEL")
    if chosen:
        return Path(chosen)
    shipped = WEIGHTS_DIR / DEFAULT_MODEL_NAME
    if shipped.is_file():
        return shipped
    raise StylizeError(f"no --model given and no shipped model at {shipped}; "
                       "pass --model FILE or train one with 'stylize train'")
