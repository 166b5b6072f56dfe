"""Mixed precision for training: which autocast dtype a device runs natively.

Half precision pays only where the hardware computes it natively; elsewhere it is an
emulation that is slower than fp32. ``auto`` therefore picks:

* CUDA: bf16 where the GPU supports it (Ampere and newer), else fp16 with a gradient
  scaler (fp16's narrow range underflows small gradients without one);
* CPU: bf16 where the CPU has native bf16 instructions (AVX-512 BF16 or AMX), else fp32;
* anything else (MPS): fp32.

Gram matrices, normalization statistics and the loss are computed in fp32 whatever the
choice (see :mod:`stylize.train.loss` and :mod:`stylize.model.norm`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch

from ..config import PRECISIONS
from ..errors import StylizeError
HALF_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(name: str) -> str:
    """``--precision`` lower-cased, or a one-line error naming the choices (training and inference share them)."""
    name = name.lower()
    if name not in PRECISIONS:
        raise StylizeError(f"unknown precision {name!r}; choose one of {', '.join(PRECISIONS)}")
    return name


def cpu_flags_have_bf16(cpuinfo: str) -> bool:
    """Whether ``/proc/cpuinfo`` text lists native bf16 instructions (AVX-512 BF16 or AMX).

    oneDNN accepts bf16 on any AVX-512 CPU, but without these instructions it converts
    to fp32 and back around every operation, which is slower than fp32 throughout.
    """
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return bool(set(line.split(":", 1)[1].split()) & {"avx512_bf16", "amx_bf16"})
    return False


@cache
def cpu_has_native_bf16() -> bool:
    """:func:`cpu_flags_have_bf16` for this machine (not Linux: no cheap way to tell, so no)."""
    try:
        return cpu_flags_have_bf16(Path("/proc/cpuinfo").read_text())
    except OSError:
        return False


def cuda_has_bf16(device: torch.device) -> bool:
    """bf16 runs natively from compute capability 8.0 (Ampere) on."""
    major, _ = torch.cuda.get_device_capability(device)
    return major >= 8


@dataclass(frozen=True)
class Precision:
    """The resolved choice: a name, an autocast dtype (``None``: fp32) and whether to scale gradients."""

    name: str
    dtype: torch.dtype | None
    scale_gradients: bool = False

    def autocast(self, device: torch.device) -> AbstractContextManager:
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(device.type, dtype=self.dtype)

    def grad_scaler(self, device: torch.device) -> torch.amp.GradScaler:
        return torch.amp.GradScaler(device.type, enabled=self.scale_gradients)


def training_precision(name: str, device: torch.device) -> Precision:
    """Resolve ``--precision`` for training on ``device``; an explicit choice the device cannot run is an error."""
    name = check_precision(name)
    if name == "auto":
        if device.type == "cuda":
            name = "bf16" if cuda_has_bf16(device) else "fp16"
        elif device.type == "cpu" and cpu_has_native_bf16():
            name = "bf16"
        else:
            name = "fp32"
    if name == "fp32":
        return Precision("fp32", None)
    if device.type == "mps":
        raise StylizeError(f"--precision {name} is not supported for training on mps; use fp32")
    if name == "fp16" and device.type == "cpu":
        raise StylizeError("--precision fp16 is not supported for training on the CPU; use bf16 or fp32")
    if name == "bf16" and device.type == "cuda" and not cuda_has_bf16(device):
        raise StylizeError(f"this GPU ({torch.cuda.get_device_name(device)}) has no native bf16; use fp16 or fp32")
    return Precision(name, HALF_DTYPES[name], scale_gradients=name == "fp16")
