"""Cache files of tensors that training can always rebuild (the converted VGG16, evaluation baselines).

They live under :func:`stylize.io.weights.cache_dir`; learned styles have their own, torch-free
cache (:mod:`stylize.io.style_cache`). Every cache file is safetensors with a
metadata dict, written atomically, keyed or checked by sha256 digests. A cache that is absent, unreadable or fails its owner's
check is rebuilt; failing to write one only costs rebuilding it next time. So the
cache never makes a command fail, nor feeds it wrong data.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as serialize
from torch import Tensor

from ..io.atomic import write_atomically
from ..io.weights import arrays_sha256


def content_digest(state: Mapping[str, Tensor]) -> str:
    """sha256 over names and raw bytes of the tensors, independent of file layout (:func:`arrays_sha256`)."""
    return arrays_sha256({key: tensor.contiguous().view(torch.uint8).numpy() for key, tensor in state.items()})


def read_cached_tensors(path: Path) -> tuple[dict[str, str], dict[str, Tensor]] | None:
    """A cache file's (metadata, tensors), or None if it is absent or unreadable.

    Each owner checks the content itself and treats a failed check like a missing file.
    """
    try:
        with safe_open(str(path), framework="pt") as handle:
            return handle.metadata() or {}, {key: handle.get_tensor(key) for key in handle.keys()}
    except (OSError, SafetensorError):
        return None


def write_cached_tensors(path: Path, tensors: Mapping[str, Tensor], metadata: dict[str, str], what: str) -> None:
    """Write a cache file atomically; on failure (read-only home, full disk) warn about ``what`` and go on.

    Concurrent writers each write their own temporary file, so a reader only ever sees
    a complete file.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, serialize(dict(tensors), metadata=metadata))
    except (OSError, SafetensorError) as exc:
        warnings.warn(f"could not cache {what} in {path}: {exc}", RuntimeWarning, stacklevel=3)
