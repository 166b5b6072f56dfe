"""Splitting work across the processes of a ``torchrun`` job.

``torchrun --nproc-per-node N -m stylize apply DIR -o OUT`` starts N copies of the
command with ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` set. Every copy plans the same
list of files, takes its share with :func:`shard` (deterministic, so each file is
rendered exactly once with no coordination), and :func:`gather` collects the per-rank
results so rank 0 can report on all of them. The process group is gloo: only small
Python objects travel, and gloo works whether or not the ranks have GPUs.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, Callable, Sequence, TypeVar

if TYPE_CHECKING:
    import torch

T = TypeVar("T")


def _joined() -> Any:
    """``torch.distributed`` when this process is in a process group, else ``None``.

    Without torch imported no group can exist, and importing it just to ask would cost
    the torch-free ONNX Runtime path of ``apply`` its point.
    """
    dist = sys.modules.get("torch.distributed")
    return dist if dist is not None and dist.is_available() and dist.is_initialized() else None


def world() -> tuple[int, int]:
    """(rank, world size) of this process: from the process group, else torchrun's env, else (0, 1)."""
    dist = _joined()
    if dist is not None:
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def shard(items: Sequence[T], rank: int, world_size: int, key: Callable[[T], str] = str) -> list[T]:
    """This rank's share: items sorted by ``key``, every ``world_size``-th from position ``rank``.

    Sorting first makes the split independent of the order items were listed in, so
    ranks that list a folder in different orders still agree on who does what.
    """
    if world_size <= 1:
        return list(items)
    return sorted(items, key=key)[rank::world_size]


def init_from_env(device: torch.device, backend: str | None = None) -> torch.device:
    """Join the torchrun job (``env://``) when ``WORLD_SIZE`` > 1, unless already joined.

    ``backend`` defaults to NCCL on GPUs (training's gradient all-reduce) and gloo on
    CPUs; batch apply asks for gloo, which can gather Python objects. Returns the device
    this rank should use: ``cuda:LOCAL_RANK`` when ``device`` is a GPU, so that the
    ranks on one machine do not all crowd onto GPU 0.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return device
    import torch
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend or ("nccl" if device.type == "cuda" else "gloo"), init_method="env://")
    return device


def gather(obj: T) -> list[T]:
    """``obj`` from every rank, in rank order (just ``[obj]`` outside a distributed job)."""
    dist = _joined()
    if dist is None:
        return [obj]
    parts: list[T | None] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, obj)
    return parts  # type: ignore[return-value]


def close() -> None:
    """Leave the process group, if this process joined one."""
    dist = _joined()
    if dist is not None:
        dist.destroy_process_group()
