"""Choosing the torch device from a user's ``--device`` word.

``auto`` must not hide a broken GPU: a user with an NVIDIA card whose driver is too old,
whose torch wheel was built without CUDA, or whose card torch has no kernels for, would
otherwise see work crawl along on the CPU with no hint why. :func:`choose_device` says
so in :attr:`DeviceChoice.note`, which the command line prints; the library itself
stays silent.
"""

from __future__ import annotations

import os
import warnings
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import check_device_name
from ..errors import StylizeError

NVIDIA_DEVICE_FILES = (Path("/dev/nvidiactl"), Path("/dev/nvidia0"))
"""Present when an NVIDIA driver is loaded (Linux): a GPU that CUDA should be able to use."""


@dataclass(frozen=True)
class DeviceChoice:
    """The device to use, and (``auto`` only) why it is not the GPU that seems to be there."""

    device: torch.device
    note: str | None = None


def choose_device(name: str | torch.device = "auto") -> DeviceChoice:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; an unavailable choice is an error.

    A ``torch.device`` is taken as already chosen and returned as is.
    """
    if isinstance(name, torch.device):
        return DeviceChoice(name)
    name = check_device_name(name)
    if name == "auto":
        problem = cuda_problem()
        if problem is None:
            return DeviceChoice(torch.device("cuda"))
        if torch.backends.mps.is_available():
            return DeviceChoice(torch.device("mps"))
        note = f"using the CPU: {problem}" if problem else None
        return DeviceChoice(torch.device("cpu"), note)
    kind, _, index = name.partition(":")
    if kind == "cuda":
        problem = cuda_problem()
        if problem is not None:
            raise StylizeError(f"--device {name}: {problem or 'no CUDA GPU is available here'} (try --device cpu)")
        count = torch.cuda.device_count()
        if index and int(index) >= count:
            gpus = "1 CUDA GPU (cuda:0)" if count == 1 else f"{count} CUDA GPUs (cuda:0 to cuda:{count - 1})"
            raise StylizeError(f"--device {name}: this machine has {gpus}")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise StylizeError(f"--device {name}: Apple's MPS backend is not available here (try --device cpu)")
    return DeviceChoice(torch.device(name))


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """The device of :func:`choose_device` (for callers with nowhere to show its note)."""
    return choose_device(name).device


def cuda_problem() -> str | None:
    """``None`` when CUDA works; otherwise why not: ``""`` when there is simply no NVIDIA GPU,
    a sentence when one seems present but torch cannot use it.

    Runs one tiny kernel, because ``torch.cuda.is_available()`` is also true for a card
    this torch build has no kernels for, which fails only at the first real operation.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        available = torch.cuda.is_available()
    if available:
        try:
            torch.ones(1, device="cuda").add_(1).item()
        except (RuntimeError, AssertionError) as exc:
            return f"CUDA is present but cannot run: {_first_line(exc)}"
        return None
    said = [_first_line(w.message) for w in caught if "cuda" in str(w.message).lower()]
    if said:
        return f"CUDA is present but cannot be used: {said[0]}"
    if not any(path.exists() for path in NVIDIA_DEVICE_FILES):
        return ""
    if torch.version.cuda is None:
        return "an NVIDIA GPU is present, but this torch build has no CUDA support (install a CUDA build of torch)"
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return "an NVIDIA GPU is present, but CUDA_VISIBLE_DEVICES hides it"
    return "an NVIDIA GPU is present, but torch cannot use it (check the driver with nvidia-smi)"


def device_scope(device: torch.device) -> AbstractContextManager:
    """Make ``device`` torch's current CUDA device for the duration of a ``with`` block.

    Work that uses "the current device" (a DataLoader's pin-memory thread, pinned host
    memory, cuDNN handles) would otherwise open a context on GPU 0 when asked for
    ``cuda:1``. Restored on exit, so the process's own choice is left as it was.
    """
    if device.type == "cuda" and device.index is not None:
        return torch.cuda.device(device)
    return nullcontext()


def _first_line(message: object) -> str:
    text = str(message).strip()
    return text.splitlines()[0] if text else type(message).__name__
