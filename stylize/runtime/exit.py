"""Ending a finished command's process without tearing the interpreter down.

After a command has returned, a normal exit frees every module it imported (numpy, ONNX
Runtime, Pillow, typer) one object at a time: for a one-photo ``apply`` that is a sizeable
share of the whole run, and it does nothing the operating system would not do. So the command
line, once its command is done, runs the exit handlers (:mod:`atexit`: coverage data,
temporary folders' finalizers, multiprocessing's clean-up), flushes stdout and stderr, and
ends the process with ``os._exit``.

Only where nothing can be lost: no other Python thread alive (a writer still writing, a
pool's workers) and no child process. A flush that fails (a closed pipe) also falls back to
the ordinary exit, which reports it as Python always has.

PyTorch's own teardown is skipped too, on purpose: a ``torchrun`` rank that has learned a
style (gloo, autograd and ONNX Runtime all loaded) could abort in the C++ destructors after
its work was done ("terminate called without an active exception"), failing the job. Its
process group is left before the command returns, and the operating system frees the rest.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn


def exit_process(code: int) -> NoReturn:
    """End the process with ``code``: at once if :func:`nothing_left_running`, else as ``sys.exit`` does."""
    if nothing_left_running():
        atexit._run_exitfuncs()  # what a normal exit runs first; then only the teardown is skipped
        try:
            for stream in (sys.stdout, sys.stderr):
                if stream is not None:
                    stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: the ordinary exit says what it says
            sys.exit(code)
        os._exit(code)
    sys.exit(code)


def nothing_left_running() -> bool:
    """Whether skipping the interpreter's teardown loses nothing: the main thread alone and no
    child process."""
    if threading.active_count() > 1:
        return False
    multiprocessing = sys.modules.get("multiprocessing")
    return multiprocessing is None or not multiprocessing.active_children()
