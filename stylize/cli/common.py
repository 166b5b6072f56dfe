"""What every command shares: options, one-line messages, errors, the model and device choice.

Every error is one line on stderr and a non-zero exit, never a traceback or a box: a
:class:`~stylize.errors.StylizeError` from the library exits 1, a usage error 2.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..config import BACKENDS, DEVICE_KINDS, PRECISIONS, ApplySettings, BatchOptions, VideoSettings, check_device_name
from ..errors import StylizeError, printable
from ..io.formats import FORMAT_BY_EXTENSION
from .progress import Verbosity

if TYPE_CHECKING:
    import torch

    from ..runtime.device import DeviceChoice

FILES, RENDER, VIDEO = BatchOptions(), ApplySettings(), VideoSettings()
"""The defaults every option of applying shows and starts from (:mod:`stylize.config` holds them;
training's are in :mod:`stylize.cli.training`)."""


def echo(message: str, err: bool = True) -> None:
    """Print one line made of words and file names; the file names are shown escaped
    (:func:`stylize.errors.printable`), so a crafted one cannot fake or erase lines."""
    typer.echo(printable(message), err=err)


Quiet = Annotated[bool, typer.Option(
    "--quiet", "-q", help="Print only errors and the command's result: no progress, no 'saved' lines or summaries.")]
Verbose = Annotated[bool, typer.Option(
    "--verbose", "-v", help="Also say on stderr which device and precision ran and how long each stage took.")]


def shipped_model(value: Path | None) -> Path | None:
    """``--model``'s value with a shipped model's short name (``default``, ``small``, ``fast``) resolved."""
    from ..io.weights import resolve_model

    if value is None:
        return None
    with user_errors():
        return resolve_model(value)


SHORT_NAMES = "a shipped model by name: default, small, fast"
ModelOption = Annotated[Optional[Path], typer.Option(
    "--model", "-m", callback=shipped_model,
    help=f"Checkpoint, or {SHORT_NAMES} (default: $STYLIZE_MODEL, a file or a name, else the default model).")]
EditedModel = Annotated[Optional[Path], typer.Option(
    "--model", "-m", callback=shipped_model,
    help=f"Checkpoint to read, never modified, or {SHORT_NAMES} (default: the shipped model). "
         "The old spelling, MODEL.safetensors as the first argument, works too.")]
NewCheckpoint = Annotated[Path, typer.Option("--output", "-o", help="New checkpoint to write.")]
ReplaceOutput = Annotated[bool, typer.Option("--overwrite", help="Replace --output if it exists.")]


def device_name(name: str) -> str:
    """``--device`` checked for its form when parsed, so a misspelling is a usage error (exit 2)."""
    try:
        return check_device_name(name)
    except StylizeError as exc:
        raise typer.BadParameter(str(exc).removeprefix("--device ")) from None


DeviceOption = Annotated[str, typer.Option(
    parser=device_name, autocompletion=lambda: list(DEVICE_KINDS), metavar="[auto|cpu|cuda|cuda:N|mps]",
    help="auto (CUDA, then MPS, then the CPU), cpu, cuda, cuda:N or mps.")]


def choices(name: str, values: tuple[str, ...]) -> type[StrEnum]:
    """An option's fixed values (from their one list in :mod:`stylize.config`) as an Enum,
    which ``--help`` lists, shell completion offers and parsing checks (exit 2)."""
    return StrEnum(name, [(value, value) for value in values])


Precision = choices("Precision", PRECISIONS)
Backend = choices("Backend", BACKENDS)
ImageFormat = choices("ImageFormat", tuple(extension.lstrip(".") for extension in FORMAT_BY_EXTENSION))
WORKERS_HELP = ("Background workers that read (and for apply, write) images while the network runs; "
                "0: none, the main loop reads each image itself.")
STYLE_HELP = ("A style name, case-insensitive: exact, else a unique prefix (starry), else a unique word prefix "
              "(wave = great_wave). A name that heads every other match wins the tie: starry = starry_night, "
              "not starry_night_over_the_rhone (type 'rhone' for that one). Also a mix (starry:0.7,wave:0.3) "
              "or 'all' for one output per style.")


def verbosity(quiet: bool, verbose: bool) -> Verbosity:
    """The ``-q`` / ``-v`` of a command (they exclude each other)."""
    if quiet and verbose:
        fail("-q/--quiet and -v/--verbose exclude each other", 2)
    return Verbosity(quiet=quiet, verbose=verbose)


def model_and_rest(model: Path | None, args: list[str]) -> tuple[Path | None, list[str]]:
    """``--model``, else the old spelling's leading ``MODEL.safetensors`` argument; and the other arguments."""
    if model is None and args and args[0].lower().endswith(".safetensors"):
        return Path(args[0]), args[1:]
    return model, args


def chosen_model(model: Path | None) -> Path:
    """``--model``, else ``$STYLIZE_MODEL``, else the shipped model (a one-line error if none)."""
    from ..io.weights import default_model

    with user_errors():
        return model or default_model()


def announce_device(name: str, say: Verbosity) -> Callable[[DeviceChoice], None]:
    """The library's ``on_device`` for ``--device NAME``: when ``auto`` passed over a GPU that is
    there but broken, say why; ``-v`` says which device, and for ``auto`` on the CPU why."""

    def on_device(choice: DeviceChoice) -> None:
        if choice.note and is_main_process():
            echo(f"warning: {choice.note}")
        why = choice.note or ("auto: no usable GPU found" if name.strip().lower() == "auto" else None)
        say.detail(f"device: {choice.device}" + (f" ({why})" if why and choice.device.type == "cpu" else ""))

    return on_device


def announce_graph(say: Verbosity) -> Callable[[Path], None]:
    """The library's ``on_make_graph``: say that a model's ONNX graph is being made (a user's model, once)."""
    return lambda path: say.say(f"making the ONNX graph for {path} (once)...", err=True)


def pick_device(name: str, say: Verbosity) -> torch.device:
    """``--device`` resolved, announced as :func:`announce_device` does."""
    from ..runtime.device import choose_device

    choice = choose_device(name)
    announce_device(name, say)(choice)
    return choice.device


def fail(message: str, code: int = 1) -> None:
    """Print ``error: message`` on stderr and exit with ``code``."""
    echo(f"error: {message}")
    raise typer.Exit(code)


@contextmanager
def user_errors(code: int = 1) -> Iterator[None]:
    """Report library errors as one line and exit ``code`` (2: the error is in an option's value)."""
    try:
        yield
    except StylizeError as exc:
        fail(str(exc), code)


def is_main_process() -> bool:
    """False on the non-zero ranks of a torchrun job, which must stay quiet."""
    from ..runtime.distributed import world

    return world()[0] == 0


LR_MAX = 1.0
"""Adam moves each weight by about the learning rate a step; far beyond 1 it overflows at once."""


def given(ctx: typer.Context, name: str) -> bool:
    """Whether the user set option ``name`` on the command line (not left it at its default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name != "DEFAULT"


def parse_numbers(text: str, option: str) -> tuple[float, ...]:
    """``"1,1,4,4"`` as numbers, or a one-line error naming ``option``."""
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise StylizeError(f"{option}: expected comma-separated numbers, got {text!r}") from None
