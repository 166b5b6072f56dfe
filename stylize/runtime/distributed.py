"""Splitting work across the processes of a ``torchrun`` job.

``torchrun --nproc-per-node N -m stylize apply DIR -o OUT`` starts N copies of the
command with ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` set. Every copy plans the same
list of files, takes its share with :func:`shard` (deterministic, so each file is
rendered exactly once with no coordination), and :func:`gather` collects the per-rank
results so rank 0 can report on all of them. The process group is NCCL on GPUs and
gloo on CPUs, for training and ``apply`` alike: ``apply --style-image`` trains (the
new style's rows, under DistributedDataParallel) before it renders, and DDP's
gradient all-reduce of CUDA tensors is what NCCL is for. Python objects travel over
either (NCCL carries them in tensors on this rank's GPU, made current at joining).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, Callable, Sequence, TypeVar

from ..errors import StylizeError

if TYPE_CHECKING:
    import torch
    from torch import nn

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
    CPUs. Returns the device this rank should use: ``cuda:LOCAL_RANK`` when ``device``
    is a GPU, so that the ranks on one machine do not all crowd onto GPU 0.
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


def data_parallel(net: nn.Module, device: torch.device) -> nn.Module:
    """``net`` under DistributedDataParallel on this rank's ``device`` (``cuda:LOCAL_RANK`` on GPUs).

    Refuses a GPU network in a gloo group: gloo would all-reduce every gradient through
    host memory, far slower than NCCL, where it works at all.
    """
    import torch.distributed as dist
    from torch import nn

    if device.type != "cuda":
        return nn.parallel.DistributedDataParallel(net)
    backend = dist.get_backend()
    if backend != "nccl":
        raise StylizeError(f"training on {device} under torchrun needs an NCCL process group, not {backend}")
    return nn.parallel.DistributedDataParallel(net, device_ids=[device.index])


def everyone(flag: bool, device: torch.device) -> bool:
    """Whether ``flag`` is true on every rank (just ``flag`` outside a distributed job).

    A collective: every rank must call it at the same point. Ranks use it to agree
    before a choice that decides which collectives follow, such as whether to train.
    """
    dist = _joined()
    if dist is None:
        return flag
    import torch

    on = device if dist.get_backend() == "nccl" else torch.device("cpu")
    agreed = torch.tensor([int(flag)], device=on)
    dist.all_reduce(agreed, op=dist.ReduceOp.MIN)
    return bool(agreed.item())


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
