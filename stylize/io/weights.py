"""Where model files live: the shipped checkpoints (so ``stylize apply`` works without ``--model``) and the cache.

The shipped checkpoints are kept in the repository's top-level ``weights/`` folder; a
wheel carries them inside the package as ``stylize/_weights/`` (``pyproject.toml`` maps
one onto the other). So an installed wheel finds them beside this module, and a checkout
(``pip install -e``) one folder up.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import StylizeError

_PACKAGE = Path(__file__).resolve().parents[1]


def _find_weights_dir() -> Path:
    """``stylize/_weights`` in an installed wheel, else the checkout's ``weights/``."""
    installed = _PACKAGE / "_weights"
    return installed if installed.is_dir() else _PACKAGE.parent / "weights"


WEIGHTS_DIR = _find_weights_dir()
"""The folder holding the shipped checkpoints (installed wheel or checkout)."""

SHIPPED_MODELS = {
    "default": "stylize-22.safetensors",
    "small": "stylize-22-small.safetensors",
    "fast": "stylize-22-fast.safetensors",
}
"""Short names of the shipped models (``-m fast``, ``STYLIZE_MODEL=fast``) and their files in ``WEIGHTS_DIR``."""

DEFAULT_MODEL_NAME = SHIPPED_MODELS["default"]


def resolve_model(model: str | Path) -> Path:
    """``model`` as a path: a short name of :data:`SHIPPED_MODELS` is that shipped file.

    A file or folder that exists under the given name wins over the short name, so that a
    model someone saved as ``./fast`` still loads as given. A short name whose file is not
    shipped here is a one-line error naming the ones that are.
    """
    path = Path(model)
    name = str(model)
    if name not in SHIPPED_MODELS or path.exists():
        return path
    shipped = WEIGHTS_DIR / SHIPPED_MODELS[name]
    if not shipped.is_file():
        here = [short for short, file in SHIPPED_MODELS.items() if (WEIGHTS_DIR / file).is_file()]
        raise StylizeError(f"model {name!r} is not shipped in {WEIGHTS_DIR} (shipped: {', '.join(here) or 'none'})")
    return shipped


def default_model() -> Path:
    """``$STYLIZE_MODEL`` (a path or a short name) if set, else the shipped default model, else a clear error."""
    chosen = os.environ.get("STYLIZE_MODEL")
    if chosen:
        return resolve_model(chosen)
    shipped = WEIGHTS_DIR / DEFAULT_MODEL_NAME
    if shipped.is_file():
        return shipped
    raise StylizeError(f"no --model given and no shipped model at {shipped}; "
                       "pass --model FILE or train one with 'stylize train'")


def cache_dir() -> Path:
    """Where converted and derived model files are cached: ``$STYLIZE_CACHE_DIR``, else the XDG cache."""
    explicit = os.environ.get("STYLIZE_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "stylize"


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def arrays_sha256(arrays: Mapping[str, Any]) -> str:
    """Hex sha256 over the names and raw bytes of ``arrays`` (numpy arrays, or anything
    ``bytes()`` reads in C order), sorted by name: the digest of a set of tensors whatever
    file layout or library holds them, so a torch-free reader can key a cache the same way."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        digest.update(key.encode())
        digest.update(bytes(memoryview(arrays[key]).cast("B")))
    return digest.hexdigest()


def check_model_file(path: Path) -> None:
    """Refuse, in one line, a checkpoint path that is missing, a folder, no regular file (a pipe, a
    device: a checkpoint is read at offsets, and a pipe would block) or empty."""
    if not path.exists():
        raise StylizeError(f"{path}: no such checkpoint")
    if path.is_dir():
        raise StylizeError(f"{path}: is a directory, not a checkpoint")
    if not path.is_file():
        raise StylizeError(f"{path}: not a regular file (a checkpoint is read from a file)")
    if path.stat().st_size == 0:
        raise StylizeError(f"{path}: checkpoint is empty (0 bytes)")
