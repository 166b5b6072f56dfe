"""One writer per output: a run that writes a checkpoint holds a lock file beside it.

Two ``stylize train -o same.safetensors`` started together would both pass the check that
``-o`` is new and then replace each other's checkpoints; the same holds for ``distill``,
``add-style`` and ``apply --save-style-to``, whose outputs are written minutes after that
check. The lock, ``.NAME.lock`` holding the process id, is created exclusively
(``O_EXCL``), so only one run gets it, and the second is refused before it starts its work;
it is removed when the run ends. A run killed without removing it leaves a stale lock: one
whose process is gone (or, unreadable, older than an hour) is taken over.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from ..errors import StylizeError
from ..runtime.distributed import world
from .atomic import STALE_AFTER_S, process_running

F = TypeVar("F", bound=Callable[..., Any])


def lock_path(output: Path) -> Path:
    """The lock file of ``output``."""
    return output.with_name(f".{output.name}.lock")


@contextlib.contextmanager
def writer_lock(output: Path) -> Iterator[None]:
    """Hold ``output``'s lock while the block runs; refuse if another live run holds it.

    Under torchrun only rank 0 writes, so the other ranks take no lock.
    """
    if world()[0] != 0:
        yield
        return
    lock = lock_path(output)
    for _ in range(2):  # a second try after taking over a stale lock
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            break
        except FileExistsError:
            owner = _owner(lock)
            if owner is not None:
                raise StylizeError(f"{output}: another run (process {owner}) is writing it; wait for that run to "
                                   f"end, or if none is running, remove {lock}") from None
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
        except FileNotFoundError:
            raise StylizeError(f"output folder {output.parent} does not exist") from None
        except OSError as exc:
            raise StylizeError(f"cannot create the lock {lock}: {exc.strerror or exc}") from None
    else:
        raise StylizeError(f"{output}: another run took its lock {lock} at the same moment; try again")
    with contextlib.suppress(OSError), os.fdopen(fd, "w") as handle:  # without its id (a full disk)
        handle.write(f"{os.getpid()}\n")                               # it still locks, for an hour
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            lock.unlink()


def writes(parameter: str) -> Callable[[F], F]:
    """Decorate a function so that it holds the :func:`writer_lock` of its argument
    ``parameter`` (a path, or ``None`` for nothing written) while it runs."""
    def decorate(run: F) -> F:
        signature = inspect.signature(run)

        @functools.wraps(run)
        def locked(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            output = bound.arguments[parameter]
            with writer_lock(Path(output)) if output is not None else contextlib.nullcontext():
                return run(*args, **kwargs)
        return locked  # type: ignore[return-value]
    return decorate


def _owner(lock: Path) -> int | str | None:
    """Who holds ``lock``: its live process id, or ``"unknown"`` for a fresh lock whose id
    cannot be read yet; ``None`` when the lock is stale."""
    try:
        text = lock.read_text().strip()
        age = time.time() - lock.stat().st_mtime
    except OSError:
        return "unknown"
    if text.isdigit():
        return int(text) if process_running(int(text)) else None
    return "unknown" if age < STALE_AFTER_S else None
