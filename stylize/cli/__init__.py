"""The ``stylize`` command line: one module per command group; :mod:`stylize.cli.app` registers them."""

from .app import app, main

__all__ = ["app", "main"]
