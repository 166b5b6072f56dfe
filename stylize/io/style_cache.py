"""Learned ``--style-image`` styles in the cache: their key, reading and writing them, without PyTorch.

A style learned from a picture is one (gamma, beta) row per norm tensor of the model, a
few thousand numbers, kept in ``cache_dir()/styles/<key>.safetensors``. The key is a
sha256 over everything the rows depend on: the model's weights (:func:`model_weights`,
the same digest whether PyTorch or numpy holds them), the painting file's bytes, the
settings they were learned with (:mod:`stylize.train.recipe`) and the loss network. Both
sides compute it here: the learner (:mod:`stylize.train.finetune`) after learning, and
``apply`` on ONNX Runtime, which renders a cached style in a process that never imports
PyTorch.

The cache is untrusted: an entry is used only if it names its own key (a file planted
or copied under another name is not), holds one finite row per norm tensor within
:data:`ROW_RANGE` times the model's own rows there, and renders its painting as a picture
(:func:`broken_rendering`; each backend renders). Anything else is relearned, never an error.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save as serialize

from ..config import TrainSettings
from ..errors import StylizeError, first_line
from ..model.header import TRAIN_PREFIX, read_header
from .atomic import write_atomically
from .pixels import as_float
from .weights import arrays_sha256, cache_dir, file_sha256

FORMAT = "stylize-style-rows/2"
"""Version 1 entries may hold rows learned at a negative rate (issue 29): never read them."""

UNCACHED_SETTINGS = ("checkpoint_every", "preview_every", "log_every", "workers")
"""Settings that do not change what is learned, left out of the key."""

ROW_RANGE = 10.0
"""How far beyond the model's own style rows a cached learned row may go: a style learned
from the model's rows stays of the same order, while garbage is orders of magnitude off."""

SATURATED_SHARE = 0.98
"""A rendering with at least this share of its values at 0 or 1 (to 8 bits) is saturated."""

PROBE_SIZE = 64
"""Side of the (squeezed) painting rendered to check a style: enough to tell a picture from a flat one."""


def is_row_key(key: str) -> bool:
    """Whether checkpoint tensor ``key`` holds one row per style (a conditional norm's gamma or beta)."""
    return key.endswith((".norm.weight", ".norm.bias"))


def model_weights(path: Path) -> dict[str, np.ndarray] | None:
    """The network's tensors of checkpoint ``path`` in float32 (as a loaded checkpoint holds them), or
    ``None`` where numpy cannot read them (bfloat16): the caller then learns, or reads, with PyTorch."""
    read_header(path)
    try:
        with safe_open(str(path), framework="numpy") as handle:
            return {key: handle.get_tensor(key).astype(np.float32)
                    for key in handle.keys() if not key.startswith(TRAIN_PREFIX)}
    except (SafetensorError, OSError, ValueError, TypeError):
        return None


def style_key(weights: Mapping[str, np.ndarray], style_image: Path, settings: TrainSettings,
              vgg_weights: Path | None) -> str:
    """The key of the rows learned from ``style_image`` on a model with ``weights`` (float32) with ``settings``."""
    try:
        image_sha = file_sha256(Path(style_image))
    except OSError as exc:
        raise StylizeError(f"{style_image}: cannot read ({exc.strerror or exc})") from None
    material = {
        "format": FORMAT,
        "model": arrays_sha256(weights),
        "image": image_sha,
        "settings": {k: v for k, v in settings.to_dict().items() if k not in UNCACHED_SETTINGS},
        "loss_network": "default" if vgg_weights is None else file_sha256(Path(vgg_weights)),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def entry(key: str) -> Path:
    """Where the rows with ``key`` are cached."""
    return cache_dir() / "styles" / f"{key}.safetensors"


def read_rows(key: str, weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """The cached rows of ``key`` ((1, C) per norm tensor of the model with ``weights``), or ``None``
    when absent or failing the checks of the module docstring (all but the rendering's)."""
    path = entry(key)
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):  # a link, a FIFO (which would block), a folder
            return None
        with safe_open(str(path), framework="numpy") as handle:
            meta = handle.metadata() or {}
            rows = {name: handle.get_tensor(name) for name in handle.keys()}
    except (OSError, SafetensorError, ValueError, TypeError):
        return None
    expected = {k: (1, v.shape[1]) for k, v in weights.items() if is_row_key(k)}
    if not (meta.get("format") == FORMAT and meta.get("key") == key
            and {k: tuple(v.shape) for k, v in rows.items()} == expected
            and all(v.dtype.kind == "f" and np.isfinite(v).all() for v in rows.values())
            and all(np.abs(rows[k]).max() <= ROW_RANGE * max(1.0, float(np.abs(weights[k]).max()))
                    for k in expected)):
        return None
    return {k: v.astype(np.float32) for k, v in rows.items()}


def write_rows(key: str, rows: Mapping[str, np.ndarray]) -> None:
    """Cache ``rows`` under ``key`` atomically; failing to only costs relearning next time (a warning)."""
    path = entry(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, serialize({k: np.ascontiguousarray(v) for k, v in rows.items()},
                                         metadata={"format": FORMAT, "key": key}))
    except (OSError, SafetensorError) as exc:
        warnings.warn(f"could not cache the learned style in {path}: {first_line(exc)}", RuntimeWarning,
                      stacklevel=2)


def probe(painting: np.ndarray) -> np.ndarray:
    """``painting`` ((3, H, W) in [0, 1], or 8-bit planes) squeezed to (1, 3, :data:`PROBE_SIZE`, :data:`PROBE_SIZE`):
    what a style's check renders.

    Its own painting is at hand wherever a style is learned or read back, and it is the
    same on every torchrun rank, so every rank reaches the same verdict.
    """
    planes = [np.asarray(Image.fromarray(np.ascontiguousarray(plane, np.float32)).resize(
        (PROBE_SIZE, PROBE_SIZE), Image.BILINEAR)) for plane in as_float(painting)]
    return np.clip(np.stack(planes), 0, 1)[None]


def broken_rendering(image: np.ndarray) -> str | None:
    """Why ``image`` ((N, 3, H, W) in [0, 1]) is not a picture: saturated or constant; ``None`` if it is one."""
    image = np.asarray(image, np.float32)
    if not np.isfinite(image).all():
        return "its rendering is not finite"
    saturated = float(((image <= 1 / 255) | (image >= 254 / 255)).mean())
    if saturated >= SATURATED_SHARE:
        return f"its rendering is saturated ({saturated:.0%} of the values at 0 or 255)"
    if float(image.std(axis=(-2, -1)).max()) < 0.5 / 255:
        return "its rendering is one flat colour"
    return None
