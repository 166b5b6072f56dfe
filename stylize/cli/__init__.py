"""The ``stylize`` command line: one module per command group; :mod:`stylize.cli.registrar` registers them.

``app`` (every command registered) and ``main`` load on first use: running one command imports
only that command's module (:func:`stylize.cli.registrar.main`).
"""

from typing import Any

__all__ = ["app", "main"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import registrar

        return getattr(registrar, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
