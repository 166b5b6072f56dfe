"""A run's seed stays inside the run: a program's own random stream is the same after it."""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

import torch

F = TypeVar("F", bound=Callable[..., Any])


def keeps_random_stream(run: F) -> F:
    """``run`` with torch's CPU random stream forked around it.

    A run seeds that stream for its network's first weights, and every module it builds (the
    loss network, a teacher) draws from it; a program that seeded torch for its own work would
    otherwise find its sequence moved by a call into the library.
    """

    @functools.wraps(run)
    def forked(*args: Any, **kwargs: Any) -> Any:
        with torch.random.fork_rng(devices=[]):
            return run(*args, **kwargs)

    return forked  # type: ignore[return-value]
