"""Choosing the torch device from a user's ``--device`` word."""

from __future__ import annotations

import torch

from .errors import StylizeError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; an unavailable choice is an error.

    A ``torch.device`` is taken as already chosen and returned as is.
    """
    if isinstance(name, torch.device):
        return name
    name = name.lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = name.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise StylizeError("--device cuda: no CUDA GPU is available here (try --device cpu)")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise StylizeError("--device mps: Apple's MPS backend is not available here (try --device cpu)")
    if kind not in DEVICE_CHOICES:
        raise StylizeError(f"--device {name}: choose one of {', '.join(DEVICE_CHOICES)}")
    return torch.device(name)
