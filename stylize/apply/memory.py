"""Device memory for inference: how large a pass fits, and recovering when one did not.

A pass of the style network at full resolution needs memory in proportion to its
pixels, so the tile size is chosen from the memory the device has free
(:func:`auto_tile`), and a pass that still runs out is retried in smaller tiles by
:class:`stylize.apply.torch_backend.Stylizer`. Out-of-memory arrives in several forms:
``torch.OutOfMemoryError`` from the CUDA caching allocator, a plain ``RuntimeError``
from cuDNN or cuBLAS when their workspace allocation fails, a ``RuntimeError`` from
Apple's MPS backend or from the CPU allocator; :func:`is_out_of_memory` knows them all.
"""

from __future__ import annotations

import math

import torch

from ..config import NetConfig

ALLOCATION_FAILURES = ("out of memory", "CUDNN_STATUS_ALLOC_FAILED", "CUBLAS_STATUS_ALLOC_FAILED",
                       "can't allocate memory")
"""Text of the ``RuntimeError``s that mean an allocation failed (CUDA, cuDNN, cuBLAS, MPS, CPU)."""

SAFETY = 2.0
"""Headroom over :func:`pass_bytes_per_pixel` for cuDNN workspaces and allocator fragmentation."""

USABLE_FRACTION = 0.8
"""Share of the free memory a pass may plan to use; other work on the GPU may grow meanwhile."""

MAX_ELEMENTS = 2**31 - 1
"""Largest tensor a pass may build: some convolution kernels index with 32-bit integers."""


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says that an allocation failed, on any device."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    if not isinstance(exc, RuntimeError):
        return False
    text = str(exc)
    return any(marker.lower() in text.lower() for marker in ALLOCATION_FAILURES)


def release(device: torch.device) -> None:
    """Hand the allocator's cached blocks back, so that a retry can use them.

    Call it only once the failed attempt's tensors are unreachable: blocks still held
    by a live tensor (the activations kept alive by an exception's traceback) stay put.
    """
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


def free_bytes(device: torch.device) -> int | None:
    """Memory a pass on ``device`` could use now; ``None`` where it cannot be told (CPU, MPS).

    On CUDA that is the driver's free memory plus what torch's caching allocator holds
    unused (reserved but not allocated), which it hands out before asking the driver.
    """
    if device.type != "cuda":
        return None
    free, _total = torch.cuda.mem_get_info(device)
    return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))


def pass_bytes_per_pixel(config: NetConfig, element_size: int) -> int:
    """Peak memory of one inference pass, per input pixel, at ``element_size`` bytes per activation.

    At the full-resolution end of the network three ``channels[0]``-wide maps are alive
    at once (the interleaved upsampling output, its normalized copy, the padded input of
    the last 9x9 convolution), beside the half-resolution ``channels[1]``-wide input of
    the last upsampling; the RGB input and output stay fp32 (three copies of 3 channels
    at 4 bytes). An estimate from the layout, not a measurement: the retry covers the rest.
    """
    c1, c2, _ = config.channels
    return int((3 * c1 + c2 / 4) * element_size + 3 * 3 * 4)


def auto_tile(device: torch.device, config: NetConfig, element_size: int) -> int | None:
    """The longest tile side (a multiple of 4) that fits the free memory; ``None`` if unknown.

    Never larger than what keeps the widest full-resolution map under
    :data:`MAX_ELEMENTS` (a 9x9 convolution's padding included).
    """
    free = free_bytes(device)
    if free is None:
        return None
    budget = free * USABLE_FRACTION / (SAFETY * pass_bytes_per_pixel(config, element_size))
    widest = math.isqrt(MAX_ELEMENTS // config.channels[0]) - 8
    return min(math.isqrt(max(int(budget), 0)), widest) // 4 * 4
