"""Ctrl-C during start-up: held while a module imports, delivered as soon as the import ends.

A KeyboardInterrupt raised inside an import can be lost. torch's C extension imports numpy
while it initialises and clears whatever error that import raises, so a Ctrl-C that lands
there vanishes and the command runs on as if nothing happened; one that lands elsewhere in
an import ends the process with a traceback. While :func:`interrupts_after_imports` holds,
a SIGINT that arrives in the main thread during an import is remembered, and the outermost
import statement raises KeyboardInterrupt once it has finished: in Python code, where the
command line's own Ctrl-C handling sees it. A SIGINT outside any import raises at once, as
Python's default handler does.

This replaces ``builtins.__import__`` and the SIGINT handler, both process-wide, so only the
command line installs it (:func:`stylize.__main__.main`); the library never does. A process
whose SIGINT is ignored (a background job) or already handled by someone else is left alone.
What Python runs before ``main`` (its own start-up, the first tens of milliseconds) is out of
reach: a Ctrl-C there still ends in Python's own traceback.
"""

from __future__ import annotations

import builtins
import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any


class _Hold:
    """The import wrapper and the SIGINT handler, sharing the main thread's import depth."""

    def __init__(self) -> None:
        self.depth = 0
        self.pending = False
        self.main = threading.main_thread().ident
        self.original = builtins.__import__

    def import_(self, *args: Any, **kwargs: Any) -> Any:
        """``__import__``, counting the main thread's nested imports (other threads get no signals)."""
        if threading.get_ident() != self.main:
            return self.original(*args, **kwargs)
        self.depth += 1
        try:
            return self.original(*args, **kwargs)
        finally:
            self.depth -= 1
            if self.depth == 0 and self.pending:
                self.pending = False
                raise KeyboardInterrupt  # the Ctrl-C that arrived while the import ran

    def on_sigint(self, signum: int, frame: FrameType | None) -> None:
        """Raise KeyboardInterrupt, or keep it for the end of the import that is running."""
        if self.depth:
            self.pending = True
        else:
            raise KeyboardInterrupt


@contextlib.contextmanager
def interrupts_after_imports() -> Iterator[None]:
    """Within the block, a Ctrl-C during an import is raised when the outermost import ends."""
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:  # ignored, or someone else's
        yield
        return
    hold = _Hold()
    builtins.__import__ = hold.import_
    signal.signal(signal.SIGINT, hold.on_sigint)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGINT) == hold.on_sigint:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        if builtins.__import__ == hold.import_:
            builtins.__import__ = hold.original
