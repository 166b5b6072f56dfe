"""Training on several torchrun ranks: stopping together, agreeing on the loss, leaving the group.

A rank that stops alone (Ctrl-C reaches it first, its loss turns NaN) would leave the
others blocked in the next collective; these helpers make every rank leave the loop at
the same step.
"""

from __future__ import annotations

import functools
import signal
import threading
from collections.abc import Callable

import torch
import torch.distributed as dist
from torch import Tensor


class StopRequest:
    """Ctrl-C under torchrun: remember it, so that every rank stops at the same step.

    torchrun forwards SIGINT to each worker (a multi-node job's other nodes get none).
    A KeyboardInterrupt raised wherever a rank happens to be would leave the others
    blocked in the next collective, so on several ranks SIGINT only sets a flag; the
    flag travels in the per-step all-reduce (:func:`_agree`), all ranks leave the loop
    at the same step, rank 0 saves. Repeated signals are absorbed so the save is never
    cut short. One process keeps Python's default: KeyboardInterrupt, save, return.
    """

    def __init__(self, world: int) -> None:
        self.requested = False
        self._previous = None
        if world > 1 and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def agree(terms: dict[str, Tensor], stop: bool, world: int) -> tuple[dict[str, float], bool]:
    """The loss terms of the whole global batch and whether any rank asked to stop.

    One all-reduce of a few scalars per step. Each rank's terms are means over its equal
    slice, so their mean is the 1-process loss (what is logged). A NaN/inf on any rank
    makes the sum non-finite on all of them, so every rank raises at the same step, before
    ``backward()`` (whose gradient all-reduce a rank that had left would leave hanging).
    """
    values = torch.stack([t.detach().float() for t in terms.values()]
                         + [torch.tensor(float(stop), device=terms["total"].device)])
    if world > 1:
        dist.all_reduce(values)
        values[:-1] /= world
    *losses, stops = values.tolist()
    return dict(zip(terms, losses)), stops > 0


def ignore_sigint(worker_id: int) -> None:
    """DataLoader workers leave Ctrl-C to the training process (torchrun signals the whole group)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def leaves_process_group(run: Callable) -> Callable:
    """Destroy the process group ``run`` joined (via :func:`stylize.runtime.distributed.init_from_env`) when it ends."""

    @functools.wraps(run)
    def wrapper(*args, **kwargs):
        joined_before = dist.is_available() and dist.is_initialized()
        try:
            return run(*args, **kwargs)
        finally:
            if not joined_before and dist.is_available() and dist.is_initialized():
                dist.destroy_process_group()

    return wrapper
