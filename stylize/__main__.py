"""The ``stylize`` command: ``python -m stylize``, the console script and ``torchrun -m stylize``.

:func:`console` runs :func:`main` and ends the process, skipping the interpreter's teardown
where that loses nothing (:mod:`stylize.runtime.exit`); :func:`main` returns the exit code,
for callers in the same process.

:func:`main` holds Ctrl-C during imports before it imports anything heavy (the command line
itself, then torch when a command needs it), so that a Ctrl-C in the first seconds ends the
command with exit 130 and one line instead of a traceback or nothing at all (see
:mod:`stylize.runtime.interrupts`).
"""

from __future__ import annotations

import sys

from .runtime.exit import exit_process
from .runtime.interrupts import interrupts_after_imports
from .runtime.process import one_blas_thread


def main(args: list[str] | None = None) -> int:
    """Run one command and return its exit code; 130 when Ctrl-C stops it."""
    with interrupts_after_imports():
        try:
            from .cli.registrar import main as run
            return run(args)
        except KeyboardInterrupt:  # the commands report their own; this is one before any command ran
            sys.stderr.write("interrupted\n")
            return 130


def console() -> None:
    """The console script's and ``python -m stylize``'s entry point: run the command, then exit.

    It owns the process, so it sets what only the process's owner may, before anything is imported.
    """
    one_blas_thread()
    exit_process(main())


if __name__ == "__main__":
    console()
