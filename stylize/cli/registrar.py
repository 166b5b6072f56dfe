"""The ``stylize`` command line: the app, its global options, and every command registered.

Each command lives in the module of its group (:mod:`~stylize.cli.training`,
:mod:`~stylize.cli.models`, :mod:`~stylize.cli.work_size`, :mod:`~stylize.cli.evaluate`, :mod:`~stylize.cli.apply`,
:mod:`~stylize.cli.info`), parses its options and calls one library function. A run
registers only the command it names (:func:`commands_for`), so ``stylize apply`` imports and
builds ``apply`` alone; ``stylize --help``, completion and a mistyped name get them all. Every
error is one line on stderr and a non-zero exit, never a traceback or a box: a
:class:`~stylize.errors.StylizeError` from the library, a usage error (exit 2), and
anything unexpected (exit 1; ``--debug`` or ``STYLIZE_DEBUG=1`` shows its traceback), of
which a path the system refused (a name too long...) is said as the path and the system's reason.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import typer

from .. import __version__
from ..errors import first_line
from ..runtime.extras import missing_extra, provides
from .common import echo


def show_version(value: bool) -> None:
    """``--version``: print the version and exit before any command runs."""
    if value:
        typer.echo(f"stylize {__version__}")
        raise typer.Exit()


def options(
    version: bool = typer.Option(False, "--version", callback=show_version, is_eager=True,
                                 help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of an unexpected error "
                                                      "(also: STYLIZE_DEBUG=1)."),
) -> None:
    """Fast neural style transfer: train styles in minutes, apply them to photos and whole folders."""
    if debug:
        os.environ[DEBUG_VARIABLE] = "1"  # for main(), which reports errors after the command has returned


DEBUG_VARIABLE = "STYLIZE_DEBUG"


COMMANDS = {
    "train": "training", "add-style": "training", "distill": "training", "remove-style": "models",
    "rename-style": "models", "set-work-size": "work_size", "export": "models", "styles": "models",
    "evaluate": "evaluate", "apply": "apply", "sheet": "apply", "info": "info",
}
"""Every command and the module of :mod:`stylize.cli` that defines it (as a function of the command's
name in snake case), in the order ``stylize --help`` lists them."""


class Started:
    """Whether a command has started: on a Ctrl-C before that, while typer parses the command
    line, typer 0.29 returns 130 without a word (older ones raise Abort), which :func:`main`
    then reports."""

    command = False


def reported(command: Callable[..., None]) -> Callable[..., None]:
    """``command``, saying ``interrupted`` when Ctrl-C stops it before it could say more itself
    (in its first seconds, while it imports): typer would exit 130 without a word."""
    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        Started.command = True
        try:
            command(*args, **kwargs)
        except KeyboardInterrupt:
            echo("interrupted")
            raise typer.Exit(130) from None
    return run


def build(names: Sequence[str] = tuple(COMMANDS)) -> typer.Typer:
    """The app with the global options and the commands ``names``."""
    app = typer.Typer(
        help="Fast neural style transfer: train styles in minutes, apply them to photos and whole folders.",
        no_args_is_help=True,
        add_completion=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(options)
    for name in names:
        module = importlib.import_module(f"{__package__}.{COMMANDS[name]}")
        app.command(name)(reported(getattr(module, name.replace("-", "_"))))
    return app


def commands_for(args: Sequence[str]) -> list[str]:
    """The commands a run with ``args`` needs: the one it names (the first argument that is no
    option: the global options take no values), or all of them."""
    named = next((arg for arg in args if not arg.startswith("-")), None)
    return [named] if named in COMMANDS else list(COMMANDS)


def __getattr__(name: str) -> Any:
    """``app``: every command registered, built on first use (for tests and typer's tools)."""
    if name == "app":
        globals()["app"] = built = build()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(args: list[str] | None = None) -> int:
    """Console-script entry point: run a command, report any error in one line, return the exit code.

    What it sets for the command (the warnings' one-line form, ``--debug``'s variable) is put back
    when it returns, so a program or test that calls it keeps its own."""
    shown, debug = warnings.showwarning, os.environ.get(DEBUG_VARIABLE)
    warnings.showwarning = show_warning
    try:
        return run(sys.argv[1:] if args is None else args)
    finally:
        warnings.showwarning = shown
        if debug is None:
            os.environ.pop(DEBUG_VARIABLE, None)
        else:
            os.environ[DEBUG_VARIABLE] = debug


def run(args: list[str]) -> int:
    """:func:`main` for these command-line arguments."""
    # Click's base of usage errors, found from typer's public BadParameter: newer typers carry
    # their own copy of click, older ones use the click package.
    usage_error = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
    Started.command = False
    try:
        code = build(commands_for(args))(args=args, standalone_mode=False)
    except usage_error as exc:  # usage errors: a bad option value, an unknown option, a missing argument
        if type(exc).__name__ == "NoArgsIsHelpError":  # plain `stylize`: typer has printed the help
            return exc.exit_code
        command = getattr(getattr(exc, "ctx", None), "command_path", "stylize")
        echo(f"error: {' '.join(exc.format_message().split())} (see '{command} --help')")
        return exc.exit_code
    except typer.Abort:  # Ctrl-C outside a command, where older typers turn it into Abort
        echo("interrupted")
        return 130
    except Exception as exc:  # a bug, or an error from a library underneath (torch...)
        if isinstance(exc, ModuleNotFoundError) and provides("torch", exc):  # a path require() missed
            echo(f"error: {missing_extra('torch', 'this command')}")
            return 1
        if os.environ.get(DEBUG_VARIABLE) == "1":
            traceback.print_exc()
        if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:  # a path the system refused
            echo(f"error: {exc.filename}: {exc.strerror}")
        else:
            echo(f"error: {type(exc).__name__}: {first_line(exc)} (--debug or {DEBUG_VARIABLE}=1 shows where)")
        return 1
    if code == 130 and not Started.command:  # Ctrl-C while typer parsed the command line
        echo("interrupted")
    return code if isinstance(code, int) else 0


def show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, file=None,
                 line: str | None = None) -> None:
    """Warnings as one ``warning:`` line, without the source line Python shows."""
    echo(f"warning: {message}")


if __name__ == "__main__":
    sys.exit(main())
