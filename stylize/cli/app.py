"""The ``stylize`` command line: parse, call the library, report.

Every error is one line on stderr and a non-zero exit, never a traceback or a box:
a :class:`~stylize.errors.StylizeError` from the library, a usage error (exit 2), and
anything unexpected (exit 1; ``--debug`` or ``STYLIZE_DEBUG=1`` shows its traceback).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import warnings
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Callable, Iterator, Optional

import typer

from .. import __version__
from ..config import (ADD_STEPS, AUTO_TILE_ONNX, AUTO_TILE_OTHER, BACKENDS, DEVICE_KINDS, EVALUATE_BUDGETS,
                      EVALUATE_SIZE, PRECISIONS, QUICK_CPU, SHEET_CELL, SHEET_MAX_COLUMNS, STYLE_LR, ApplySettings,
                      BatchOptions, DistillSettings, EngineOptions, LossWeights, TrainSettings, VideoSettings,
                      check_device_name)
from ..errors import StylizeError, first_line, printable
from ..io.formats import FORMAT_BY_EXTENSION
from ..runtime.extras import missing_extra, provides, require
from ..runtime.process import own_process
from .progress import Progress, Verbosity

if TYPE_CHECKING:
    import torch

    from ..apply.batch import Result
    from ..model.checkpoint import Checkpoint
    from ..apply.torch_backend import Stylizer
    from ..apply.onnx_backend import OnnxStylizer
    from ..train.loop import StepReport, TrainResult

TRAIN, LOSS, FILES, RENDER, VIDEO = TrainSettings(), LossWeights(), BatchOptions(), ApplySettings(), VideoSettings()
DISTILL = DistillSettings()
"""The defaults every option shows and starts from (:mod:`stylize.config` holds them)."""

app = typer.Typer(
    help="Fast neural style transfer: train styles in minutes, apply them to photos and whole folders.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


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


def pick_device(name: str, say: Verbosity) -> torch.device:
    """``--device`` resolved; when ``auto`` passed over a GPU that is there but broken, say why.

    ``-v`` says which device, and for ``auto`` on the CPU why (no GPU, or the broken one).
    """
    from ..runtime.device import choose_device

    choice = choose_device(name)
    if choice.note and is_main_process():
        echo(f"warning: {choice.note}")
    why = choice.note or ("auto: no usable GPU found" if name.strip().lower() == "auto" else None)
    say.detail(f"device: {choice.device}" + (f" ({why})" if why and choice.device.type == "cpu" else ""))
    return choice.device


def show_version(value: bool) -> None:
    """``--version``: print the version and exit before any command runs."""
    if value:
        typer.echo(f"stylize {__version__}")
        raise typer.Exit()


@app.callback()
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


class StepBar:
    """A training loop's ``on_step`` callback that shows progress (quiet off rank 0 and with ``-q``).

    The bar opens at the first step, so an error before it (a bad file, a missing
    folder) is the only line printed, and its total is the run's, known only once a
    checkpoint's settings are read. The time until then is the ``setup`` stage
    (photos, paintings, loss network), the rest ``steps``.
    """

    def __init__(self, say: Verbosity, desc: str) -> None:
        self.say, self.desc = say, desc
        self.bar: Progress | None = None
        self.started = time.perf_counter()

    def __call__(self, report: StepReport) -> None:
        if self.bar is None:
            self.say.record("setup", time.perf_counter() - self.started)
            self.started = time.perf_counter()
            self.bar = Progress(report.steps, "step", desc=self.desc, initial=report.step - 1,
                                enabled=self.say.progress and is_main_process())
        self.bar.update(report.step, {"img/s": f"{report.images_per_s:.3g}",
                                      **{k: f"{v:.3g}" for k, v in report.losses.items()}})

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.say.record("steps", time.perf_counter() - self.started)


class FrameBar:
    """``apply``'s ``on_frame`` callback: progress over the frames of each video in turn."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Progress | None = None
        self.video: Result | None = None

    def __call__(self, result: Result, done: int, total: int | None) -> None:
        if self.video is not result:
            self.close()
            self.video = result
            self.bar = Progress(total, "frame", desc=Path(result.input).name, enabled=self.enabled, leave=False)
        self.bar.update(done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class TileProgress:
    """``Stylizer.on_tile``: a progress count for each photo rendered in tiles (large photos).

    One bar per photo; a photo small enough for one pass reports nothing.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Progress | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None or done <= self.bar.n:
            self.close()
            self.bar = Progress(total, "tile", desc="tiles", enabled=self.enabled, leave=False)
        self.bar.update(done)
        if done == total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def run_training_loop(run: Callable[[StepBar], TrainResult], say: Verbosity, desc: str) -> None:
    """Run a training loop (``train``, ``add-style``) behind a progress bar; say where it saved.

    ``run`` gets the ``on_step`` callback. Ctrl-C saves and exits 130 with how to resume.
    """
    bar = StepBar(say, desc)
    with user_errors():
        try:
            result = run(bar)
        finally:
            bar.close()  # before any error line, which would otherwise share the bar's line
    if result.interrupted:  # every torchrun rank stops at the same step and exits 130; rank 0 says so
        if is_main_process():
            echo(f"interrupted at step {result.step}; saved {result.checkpoint}; continue with --resume")
        raise typer.Exit(130)
    if is_main_process() and result.out_of_time:
        say.say(f"time limit reached at step {result.step}; saved {result.checkpoint}; continue with --resume")
    elif is_main_process():
        say.say(f"saved {result.checkpoint} (step {result.step})")


LR_MAX = 1.0
"""Adam moves each weight by about the learning rate a step; far beyond 1 it overflows at once."""


def given(ctx: typer.Context, name: str) -> bool:
    """Whether the user set option ``name`` on the command line (not left it at its default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name != "DEFAULT"


@app.command()
def train(
    ctx: typer.Context,
    style_dir: Path = typer.Argument(..., help="Folder of paintings; each file becomes a style named by its stem."),
    content: Path = typer.Option(..., "--content", "-c", help="Folder of photos to train on (searched recursively)."),
    output: Path = typer.Option(Path("model.safetensors"), "--output", "-o",
                                help="Checkpoint to write; its .log.jsonl and .previews/ go beside it."),
    steps: int = typer.Option(TRAIN.steps, min=1, help="Total optimizer steps (with --resume: the new total)."),
    batch_size: int = typer.Option(TRAIN.batch_size, min=1, help="Photos per step (split across torchrun processes)."),
    image_size: int = typer.Option(TRAIN.image_size, min=32, help="Side of the square photo crops."),
    style_size: int = typer.Option(TRAIN.style_size, min=32, help="Long side the paintings are resized to."),
    lr: float = typer.Option(TRAIN.lr, min=0.0, max=LR_MAX,
                             help=f"Adam learning rate, cosine-decayed to {TRAIN.final_lr_fraction:.0%} over the run "
                                  "(with --resume: a new one)."),
    content_weight: float = typer.Option(LOSS.content, min=0.0, help="Weight of the content loss (at --content-layer)."),
    style_weight: float = typer.Option(LOSS.style, min=0.0, help="Weight of the Gram style loss; higher paints more."),
    tv_weight: float = typer.Option(LOSS.tv, min=0.0, help="Weight of the total-variation smoother."),
    preset: str = typer.Option(TRAIN.preset, help="Network size: 'johnson' (the paper's) or 'small' (fast on CPUs)."),
    seed: int = typer.Option(TRAIN.seed, help="Seed for the initial weights and the data sequence."),
    checkpoint_every: int = typer.Option(TRAIN.checkpoint_every, min=1, help="Write the checkpoint every N steps."),
    preview_every: int = typer.Option(TRAIN.preview_every, min=1, help="Write a preview grid every N steps."),
    snapshot_every: int = typer.Option(TRAIN.snapshot_every, min=0,
                                       help="Also keep the weights every N steps as a lean model in "
                                            "MODEL.snapshots/ (0: never), to release an earlier state."),
    preview: Optional[Path] = typer.Option(None, help="Photo for the preview grids (default: the first content photo)."),
    workers: int = typer.Option(TRAIN.workers, min=0, help=f"{WORKERS_HELP} Processes here."),
    device: DeviceOption = "auto",
    vgg_weights: Optional[Path] = typer.Option(None, help="Use a torchvision-format VGG16 state dict as the loss network."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run saved in --output (its settings; "
                                                        "a new --steps or --lr)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start over in place of an existing --output."),
    init_from: Optional[Path] = typer.Option(
        None, "--init-from", help="Continue from a released model (e.g. weights/stylize-22.safetensors): its weights "
                                  "and step count, this command's settings, a fresh optimizer warmed up."),
    warmup_steps: int = typer.Option(TRAIN.warmup_steps, min=0, help="Linear learning-rate warm-up over the first N steps of a fresh "
                                                    "optimizer (from scratch or --init-from)."),
    content_layer: str = typer.Option(LOSS.content_layer, help="VGG layer of the content loss: relu1_2, relu2_2, relu3_3 or "
                                                      "relu4_3 (deeper keeps only the layout, frees more texture)."),
    style_layer_weights: str = typer.Option(
        ",".join(f"{w:g}" for w in LOSS.style_layers), help="Weights of the style loss at relu1_2,relu2_2,relu3_3,relu4_3; more on the last two "
                        "paints larger motifs."),
    precision: Precision = typer.Option(
        TRAIN.precision, case_sensitive=False, help="auto (bf16 where the hardware runs it natively: AVX-512 BF16/AMX CPUs, Ampere+ GPUs; fp16 "
                     "on older GPUs; else fp32), fp32, bf16 or fp16."),
    time_limit: Optional[float] = typer.Option(
        None, "--time-limit", min=0.0, help="Stop and save after this many minutes (train in chunks: "
                                            "run again with --resume)."),
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Train one network that holds every painting in STYLE_DIR as a named style.

    Examples:

      stylize train paintings/ -c photos/ -o my-styles.safetensors --steps 20000

      stylize train paintings/ -c photos/ -o cpu.safetensors --preset small --image-size 128 --batch-size 4

      stylize train paintings/ -c photos/ -o my-styles.safetensors --steps 40000 --resume

      stylize train paintings/ -c photos/ -o next.safetensors --init-from weights/stylize-22.safetensors --steps 30000 --warmup-steps 200
    """
    with user_errors():
        require("train", "stylize train")
    from ..train.loop import train as run_training

    own_process()
    say = verbosity(quiet, verbose)
    with user_errors():
        torch_device = pick_device(device, say)
        weights = LossWeights(content=content_weight, style=style_weight, tv=tv_weight, content_layer=content_layer,
                              style_layers=parse_numbers(style_layer_weights, "--style-layer-weights"))
    settings = TrainSettings(
        steps=steps, batch_size=batch_size, image_size=image_size, style_size=style_size, lr=lr,
        warmup_steps=warmup_steps, weights=weights, preset=preset, seed=seed,
        checkpoint_every=checkpoint_every, preview_every=preview_every, snapshot_every=snapshot_every,
        workers=workers, precision=str(precision),
    )
    resume_lr = lr if resume and given(ctx, "lr") else None
    if resume_lr is not None:
        echo(f"--resume: continuing with the new --lr {lr:g} instead of the run's own")
    run_training_loop(lambda on_step: run_training(style_dir, content, output, settings, device=torch_device,
                                                   vgg_weights=vgg_weights, resume=resume, overwrite=overwrite,
                                                   resume_lr=resume_lr, init_from=init_from,
                                                   preview=preview, on_step=on_step,
                                                   time_limit=time_limit * 60 if time_limit is not None else None),
                      say, "train")


@app.command()
def distill(
    teacher: Path = typer.Argument(..., help="The model to learn from (e.g. weights/stylize-22.safetensors)."),
    content: Path = typer.Option(..., "--content", "-c", help="Folder of photos to train on (searched recursively)."),
    output: Path = typer.Option(Path("student.safetensors"), "--output", "-o",
                                help="Checkpoint to write; its .log.jsonl and .preview.png go beside it."),
    preset: str = typer.Option(DISTILL.preset, help="The student's architecture (a network preset)."),
    steps: int = typer.Option(DISTILL.steps, min=1, help="Total optimizer steps (with --resume: the new total)."),
    batch_size: int = typer.Option(DISTILL.batch_size, min=1, help="Photos per step."),
    image_size: int = typer.Option(DISTILL.image_size, min=32, help="Side of the square photo crops."),
    resize: int = typer.Option(DISTILL.resize, min=32, help="Short side the photos are resized to before cropping."),
    lr: float = typer.Option(DISTILL.lr, min=0.0, max=LR_MAX,
                             help=f"Adam learning rate, cosine-decayed to {DISTILL.final_lr_fraction:.0%} over the run."),
    style_lr: float = typer.Option(DISTILL.style_lr, min=0.0, max=LR_MAX,
                                   help="Learning rate of the styles' (gamma, beta) rows, decayed alike."),
    gradient_weight: float = typer.Option(DISTILL.gradient_weight, min=0.0,
                                          help="Weight of the image-difference L1 (strokes) beside the pixel L1."),
    seed: int = typer.Option(DISTILL.seed, help="Seed for the initial weights and the data sequence."),
    checkpoint_minutes: float = typer.Option(DISTILL.checkpoint_minutes, min=0.0,
                                             help="Write the checkpoint (and preview) this often."),
    preview: Optional[Path] = typer.Option(None, help="Photo for the preview (default: the first content photo)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run saved in --output (its settings; a new --steps)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start over in place of an existing --output."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", min=0.0,
                                               help="Stop and save after this many minutes (continue with --resume)."),
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Train a cheaper student network to paint what TEACHER paints, in all its styles (no loss network).

    Example:

      stylize distill weights/stylize-22.safetensors -c photos/ -o fast.safetensors --time-limit 600
    """
    from ..train.distill import distill as run_distill
    from ..io.images import read_image

    own_process()
    say = verbosity(quiet, verbose)
    settings = DistillSettings(preset=preset, steps=steps, batch_size=batch_size, image_size=image_size,
                               resize=resize, lr=lr, style_lr=style_lr,
                               gradient_weight=gradient_weight, seed=seed, checkpoint_minutes=checkpoint_minutes)
    with user_errors():
        photo = read_image(preview).rgb if preview is not None else None
    run_training_loop(lambda on_step: run_distill(teacher, content, output, settings, resume=resume, overwrite=overwrite,
                                                  time_limit=time_limit * 60 if time_limit is not None else None,
                                                  preview_photo=photo, on_step=on_step),
                      say, "distill")


def parse_numbers(text: str, option: str) -> tuple[float, ...]:
    """``"1,1,4,4"`` as numbers, or a one-line error naming ``option``."""
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise StylizeError(f"{option}: expected comma-separated numbers, got {text!r}") from None


@app.command("add-style")
def add_style(
    style_images: list[str] = typer.Argument(..., metavar="STYLE_IMAGE...",
                                             help="Paintings; each becomes a new style named by its file stem."),
    model: EditedModel = None,
    output: Path = typer.Option(..., "--output", "-o",
                                help="New checkpoint to write; its .log.jsonl and .previews/ go beside it."),
    content: Path = typer.Option(..., "--content", "-c", help="Folder of photos to learn on (searched recursively)."),
    name: Optional[str] = typer.Option(None, "--name", help="Name of the new style (only with one STYLE_IMAGE)."),
    steps: Optional[int] = typer.Option(None, min=1, help=f"Optimizer steps (default: {ADD_STEPS}; with --resume: "
                                                          "the run's own, or the new total)."),
    lr: Optional[float] = typer.Option(None, min=0.0, max=LR_MAX,
                                       help=f"Adam learning rate (default: {STYLE_LR:g}, above a whole network's "
                                            f"{TRAIN.lr:g}: only the new styles' few thousand numbers move)."),
    style_weight: Optional[float] = typer.Option(None, min=0.0, help="Style loss weight (default: the model's)."),
    image_size: Optional[int] = typer.Option(None, min=32, help="Side of the photo crops (default: the model's)."),
    batch_size: Optional[int] = typer.Option(None, min=1, help="Photos per step (default: the model's)."),
    style_size: Optional[int] = typer.Option(None, min=32, help="Long side of the paintings (default: the model's)."),
    preview: Optional[Path] = typer.Option(None, help="Photo for the preview grids (default: the first content photo)."),
    workers: int = typer.Option(TRAIN.workers, min=0, help=f"{WORKERS_HELP} Processes here."),
    device: DeviceOption = "auto",
    vgg_weights: Optional[Path] = typer.Option(None, help="The loss network, if the model was not trained with "
                                                          "the default VGG16."),
    resume: bool = typer.Option(False, "--resume", help="Continue the add-style run saved in --output "
                                                        "(its settings; a new --steps or --lr)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start over in place of an existing --output."),
    precision: Optional[Precision] = typer.Option(None, case_sensitive=False, help="auto, fp32, bf16 or fp16 (default: the model's, usually auto: "
                                                       "bf16 where the hardware runs it natively)."),
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Add styles to a trained model in minutes: only the new styles' norm parameters are learned.

    Every other weight is frozen, so the model's existing styles render exactly as before.
    Settings default to those the model was trained with.

    Examples:

      stylize add-style -m model.safetensors monet.jpg -c photos/ -o model-plus-monet.safetensors

      stylize add-style IMG_0042.jpg --name sunset -c photos/ -o shipped-plus-sunset.safetensors

      stylize add-style -m model.safetensors a.jpg b.jpg -c photos/ -o model-ab.safetensors --resume
    """
    with user_errors():
        require("train", "stylize add-style")
    from ..train.finetune import Overrides, add_styles

    own_process()
    say = verbosity(quiet, verbose)
    model, paintings = model_and_rest(model, style_images)
    model = chosen_model(model)
    with user_errors():
        torch_device = pick_device(device, say)
    if not paintings:
        fail("give at least one STYLE_IMAGE")
    overrides = Overrides(steps=steps, lr=lr, style_weight=style_weight, image_size=image_size,
                          batch_size=batch_size, style_size=style_size, workers=workers,
                          precision=None if precision is None else str(precision))
    if resume and lr is not None:
        echo(f"--resume: continuing with the new --lr {lr:g} instead of the run's own")
    run_training_loop(lambda on_step: add_styles(model, [Path(p) for p in paintings], content, output, name=name,
                                                 overrides=overrides, device=torch_device, vgg_weights=vgg_weights,
                                                 resume=resume, overwrite=overwrite, preview=preview,
                                                 on_step=on_step), say, "add-style")


@app.command("remove-style")
def remove_style(
    names: list[str] = typer.Argument(..., metavar="NAME...", help="Styles to remove, as 'stylize styles' lists them."),
    model: EditedModel = None,
    output: NewCheckpoint = ...,
    overwrite: ReplaceOutput = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Write a copy of the model without some styles (no training; the others are unchanged).

    Names are matched exactly (case, spaces, '-' and '_' aside), not by prefix. The copy
    keeps the model's storage precision (fp16 stays fp16).

    Examples:

      stylize remove-style the_scream great_wave -o fewer.safetensors

      stylize remove-style -m my-styles.safetensors old_try -o my-styles-v2.safetensors
    """
    from ..model.edits import remove_styles

    say = verbosity(quiet, verbose)
    model, names = model_and_rest(model, names)
    if not names:
        fail("give at least one style NAME to remove")
    edit_checkpoint(chosen_model(model), output, lambda ckpt: remove_styles(ckpt, names), say,
                    overwrite=overwrite)


@app.command("rename-style")
def rename_style(
    names: list[str] = typer.Argument(..., metavar="OLD NEW", help="The style's current name and its new name."),
    model: EditedModel = None,
    output: NewCheckpoint = ...,
    overwrite: ReplaceOutput = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Write a copy of the model with style OLD called NEW (the weights are unchanged).

    OLD is matched exactly (case, spaces, '-' and '_' aside). The copy keeps the model's
    storage precision (fp16 stays fp16).

    Examples:

      stylize rename-style starry_night starry -o renamed.safetensors

      stylize rename-style -m my-styles.safetensors IMG_0042 sunset -o my-styles-v2.safetensors
    """
    from ..model.edits import rename_style as rename

    say = verbosity(quiet, verbose)
    model, names = model_and_rest(model, names)
    if len(names) != 2:
        fail(f"give the style's OLD and NEW names (got {len(names)} names)")
    old, new = names
    path = chosen_model(model)
    edit_checkpoint(path, output, lambda ckpt: rename(ckpt, old, new, path), say, overwrite=overwrite)


@app.command()
def export(
    model_arg: Optional[Path] = typer.Argument(None, metavar="[MODEL]", help="Same as --model (the old spelling)."),
    model: EditedModel = None,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Lean checkpoint to write."),
    onnx: Optional[Path] = typer.Option(None, "--onnx", help="Write the network with all its styles as an ONNX "
                                                             "graph instead (for ONNX Runtime; needs onnx)."),
    half: bool = typer.Option(True, "--half/--full",
                              help="Store the weights in fp16 (half the size, loaded as fp32) or in fp32."),
    overwrite: ReplaceOutput = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Write a lean copy of a model to share or ship, or (--onnx) its network as an ONNX graph.

    A training checkpoint also holds Adam's state for --resume, which triples its size
    and is of no use for applying styles; -o writes it without, fp16 weights by default.
    --onnx writes one graph for every style and mix, any image size, tiles and video
    included (see the README).

    Examples:

      stylize export -m runs/model.safetensors -o weights/my-styles.safetensors

      stylize export -m runs/model.safetensors -o my-styles-fp32.safetensors --full

      stylize export --onnx stylize-22.onnx
    """
    say = verbosity(quiet, verbose)
    if model is not None and model_arg is not None:
        fail("give the model once: -m MODEL or MODEL")
    path = chosen_model(model or model_arg)
    if (output is None) == (onnx is None):
        fail("give one of -o LEAN.safetensors or --onnx OUT.onnx")
    if onnx is not None:
        with user_errors():
            require("torch", "stylize export --onnx")
        from ..model import checkpoint
        from ..apply.graphs import graph_metadata
        from ..model.onnx_export import export_onnx
        from ..model.edits import check_output
        from ..io.weights import file_sha256

        with user_errors():
            check_output(path, onnx, overwrite=overwrite)
            with say.stage("load"):
                ckpt = checkpoint.load(path)
            with say.stage("export"):
                export_onnx(ckpt, onnx, graph_metadata(file_sha256(path)))
        report_saved(onnx, ckpt.styles, say)
        return
    edit_checkpoint(path, output, lambda ckpt: ckpt, say, half=half, overwrite=overwrite)


def edit_checkpoint(model: Path, output: Path, edit: Callable[[Checkpoint], Checkpoint], say: Verbosity, *,
                    half: bool | None = None, overwrite: bool = False) -> None:
    """Load MODEL, apply ``edit``, write the result (no optimizer state) to a new file (an existing
    one only with ``overwrite``), list its styles.

    ``half``: store fp16 or fp32; ``None`` keeps MODEL's own storage (fp16 stays fp16).
    """
    with user_errors():
        require("torch", "editing a model")
    from ..model import checkpoint
    from ..model.edits import check_output

    with user_errors():
        check_output(model, output, overwrite=overwrite)
        with say.stage("load"):
            edited = edit(checkpoint.load(model))
        with say.stage("save"):
            checkpoint.save(output, edited, half=half if half is not None else checkpoint.stores_half(model),
                            overwrite=overwrite)
    report_saved(output, edited.styles, say)


def report_saved(path: Path, styles: list[str], say: Verbosity) -> None:
    """Say which model file was written, its size and its styles."""
    say.say(f"saved {path} ({path.stat().st_size / 1e6:.1f} MB): {len(styles)} styles: {', '.join(styles)}")


def onnx_stylizer(model: Path | None, say: Verbosity) -> OnnxStylizer:
    """The ONNX Runtime stylizer for ``model``, with the thread count PyTorch would use; says so
    when the model's graph has to be made first (a user's model, the first time)."""
    from ..apply.onnx_backend import OnnxStylizer, default_threads

    return OnnxStylizer.load(model, threads=default_threads(),
                             on_make=lambda path: say.say(f"making the ONNX graph for {path} (once)...", err=True))


def torch_stylizer(model: Path | None, device: str, precision: str, style_image: Path | None, content: Path | None,
                   inputs: list[str], style: str | None, save_style_to: Path | None,
                   engine: EngineOptions, say: Verbosity, overwrite: bool = False,
                   style_steps: int | None = None) -> tuple[Stylizer, str | None]:
    """``apply``'s PyTorch stylizer on its device (this torchrun rank's), and the ``--style`` to render."""
    if style_image is not None:
        require("train", "--style-image")
    require("torch", "rendering with PyTorch (a GPU, --backend torch, --precision bf16/fp16, videos, torchrun)")
    from ..runtime import distributed
    from ..apply.torch_backend import Stylizer

    torch_device = distributed.init_from_env(pick_device(device, say))
    if style_image is None:
        return Stylizer.load(model, device=torch_device, precision=precision, engine=engine), style
    return stylizer_with_style_image(model, style_image, [content] if content else inputs, style, save_style_to,
                                     torch_device, precision, engine, say, overwrite, style_steps)


def stylizer_with_style_image(model: Path | None, style_image: Path, photos: list[Path | str], style: str | None,
                              save_to: Path | None, device: torch.device,
                              precision: str, engine: EngineOptions, say: Verbosity,
                              overwrite: bool = False, steps: int | None = None) -> tuple[Stylizer, str | None]:
    """``apply --style-image``: the model plus the picture's style, learned on ``photos`` (or cached).

    Returns the stylizer and the ``--style`` to render: the given one (which may name or
    mix in the new style), else the new style. An existing ``save_to`` is replaced only with
    ``overwrite``. ``steps``: learning steps (``None``: the device's quick recipe).
    """
    from ..model import checkpoint
    from ..apply.batch import STDIO
    from ..train.finetune import Overrides, learn_style
    from ..apply.torch_backend import Stylizer
    from ..model.edits import check_output
    from ..io.weights import default_model

    if STDIO in photos:
        raise StylizeError("--style-image learns on the photos, but '-' (stdin) can be read only once; "
                           "pass --content FOLDER of photos to learn on")
    path = model or default_model()
    if save_to is not None:
        check_output(path, save_to, overwrite=overwrite)
    bar = StepBar(say, "learning the style")
    try:
        learned = learn_style(checkpoint.load(path, map_location=device), style_image, [Path(p) for p in photos],
                              overrides=Overrides(steps=steps), device=device, on_step=bar)
    except KeyboardInterrupt:
        fail("interrupted while learning the style; nothing was written", 130)
    finally:
        bar.close()
    if save_to is not None:
        checkpoint.save(save_to, learned, overwrite=overwrite)
    return (Stylizer(learned.net, learned.styles, device=device, precision=precision, engine=engine),
            style or learned.styles[-1])


@app.command()
def styles(
    model: ModelOption = None,
    as_json: bool = typer.Option(False, "--json", help="Print the metadata as JSON."),
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """List the styles in a checkpoint, in order, with its architecture and training step.

    --style in apply takes these names, or less of them: a unique prefix (starry), a unique
    word prefix (wave = great_wave), and where one match heads all the others word by
    word it wins: starry = starry_night, not starry_night_over_the_rhone.

    Examples:

      stylize styles

      stylize styles -m my-styles.safetensors --json
    """
    from ..model.header import check_finite, read_header

    say = verbosity(quiet, verbose)
    path = chosen_model(model)
    with user_errors(), say.stage("read"):
        meta = read_header(path).meta
        check_finite(path)  # apply refuses such weights; so does the listing
    if as_json:
        typer.echo(json.dumps(meta, indent=2))
        return
    config = meta.get("config", {})
    kinds = [("separable" if config.get("separable") else ""),
             ("pixel-shuffle upsampling" if config.get("upsample") == "shuffle" else ""),
             ("half-resolution ends" if config.get("full_res") is False else "")]
    echo(f"{path}: {len(meta['styles'])} styles, step {meta.get('step', 0)}, "
         f"channels {config.get('channels')}, {config.get('n_residual')} residual blocks"
         + "".join(f", {kind}" for kind in kinds if kind), err=False)
    for name in meta["styles"]:
        echo(f"  {name}", err=False)


@app.command()
def evaluate(
    model_arg: Optional[Path] = typer.Argument(None, metavar="[MODEL]", help="Same as --model (the old spelling)."),
    model: ModelOption = None,
    styles_dir: Path = typer.Option(..., "--styles", help="Folder of the paintings the model was trained on."),
    photos: Path = typer.Option(..., "--photos", help="Folder of test photos."),
    size: int = typer.Option(EVALUATE_SIZE, min=32, help=f"Long side of the test photos ({EVALUATE_SIZE}: as "
                                                          "Johnson et al.; 128 for a quick check, where L-BFGS "
                                                          "converges sooner)."),
    iterations: str = typer.Option(",".join(map(str, EVALUATE_BUDGETS)),
                                   help="L-BFGS budgets of the Gatys baseline, comma-separated."),
    limit: Optional[int] = typer.Option(None, min=1, help="Use only the first N photos (quick runs)."),
    only: Optional[str] = typer.Option(None, help="Comma-separated style names (default: every style found)."),
    compare: Optional[Path] = typer.Option(None, help="A previous checkpoint to compare with, style by style, "
                                                      "on the same photos under MODEL's loss."),
    cache_dir: Optional[Path] = typer.Option(None, help="Folder of cached L-BFGS baselines (default: baselines/ in "
                                                        "stylize's cache, ~/.cache/stylize or $STYLIZE_CACHE_DIR)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Recompute the baselines; read and write no cache."),
    device: DeviceOption = "auto",
    vgg_weights: Optional[Path] = typer.Option(None, help="The loss network, if not the default VGG16."),
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Compare the network's perceptual loss with Gatys et al.'s L-BFGS optimization, per style.

    Prints a Markdown table: the network's mean content/style/total loss on the photos, and the
    baseline's total after each iteration budget (same VGG16, same loss weights as training),
    then the median and worst style. The baselines are cached (keyed by the photos, paintings,
    size and loss), so evaluating another model on the same photos costs only its forward passes.

    Examples:

      stylize evaluate --styles paintings/ --photos test-photos/

      stylize evaluate -m my-styles.safetensors --styles paintings/ --photos test-photos/ --size 128 --limit 1 --iterations 50,100
    """
    with user_errors():
        require("train", "stylize evaluate")
    from ..model import checkpoint
    from ..train.data import load_styles
    from ..train.evaluate import MAX_BUDGET, default_cache, evaluate as run_evaluation, markdown_table, summary
    from ..train.vgg import load_vgg

    own_process()
    say = verbosity(quiet, verbose)
    with user_errors(2):
        try:
            budgets = sorted({int(b) for b in iterations.split(",")})
        except ValueError:
            raise StylizeError(f"--iterations {iterations!r}: expected comma-separated integers, e.g. "
                               f"{','.join(map(str, EVALUATE_BUDGETS))}")
        if not 1 <= budgets[0] <= budgets[-1] <= MAX_BUDGET:
            raise StylizeError(f"--iterations {iterations!r}: each budget must be 1 to {MAX_BUDGET} L-BFGS iterations")
    with user_errors():
        if model is not None and model_arg is not None:
            raise StylizeError("give the model once: -m MODEL or MODEL")
        torch_device = pick_device(device, say)
        ckpt = checkpoint.load(chosen_model(model or model_arg))
        previous = checkpoint.load(compare) if compare is not None else None
        settings = TrainSettings.from_dict(ckpt.training)
        names, paintings = load_styles(styles_dir, settings.style_size)
        chosen = matching_paintings(ckpt.styles, dict(zip(names, paintings)), only, styles_dir)
        bar = Progress(len(chosen), "style", desc="evaluate", enabled=say.progress)

        def on_progress(name: str, done: int, total: int) -> None:
            bar.update(bar.n + (done == total), {"style": f"{name} {done}/{total}"})

        with say.stage("evaluate"):
            scores = run_evaluation(ckpt, chosen, photos, weights=settings.weights,
                                    vgg=load_vgg(vgg_weights, torch_device), size=size, budgets=budgets, limit=limit,
                                    device=torch_device, cache=None if no_cache else cache_dir or default_cache(),
                                    previous=previous, on_progress=on_progress)
        bar.close()
    typer.echo("\n".join([markdown_table(scores), "", *summary(scores)]))


def matching_paintings(styles: list[str], paintings: dict[str, torch.Tensor], only: str | None,
                       folder: Path) -> dict[str, torch.Tensor]:
    """The paintings of the styles to evaluate (``--only``, else every style that has one), by
    name; refuses paintings that are no style of the model (another model's folder), which
    would be scored against nothing meaningful."""
    wanted = only.split(",") if only else [name for name in styles if name in paintings]
    unknown = [name for name in (only.split(",") if only else paintings) if name not in styles]
    missing = [name for name in wanted if name not in paintings]
    if unknown or missing or not wanted:
        problems = [f"not styles of the model: {', '.join(unknown)}" if unknown else "",
                    f"no painting for: {', '.join(missing)}" if missing else "",
                    "none of the model's styles has a painting" if not wanted else ""]
        raise StylizeError(f"the paintings in {folder} do not match the model's styles ("
                           + "; ".join(p for p in problems if p) + "); give the folder the model was trained on, "
                           "or pick styles with --only")
    return {name: paintings[name] for name in wanted}


@app.command()
def apply(
    inputs: list[str] = typer.Argument(..., metavar="INPUT",
                                       help="Photos, folders (searched recursively), or '-' to read stdin."),
    output: Optional[str] = typer.Option(
        None, "--output", "-o",
        help="A file (one photo), a folder, or '-' for stdout. Default: photo-STYLE.ext beside a photo, "
             "FOLDER-STYLE/ beside a folder."),
    style: Optional[str] = typer.Option(None, "--style", "-s", help=STYLE_HELP),
    model: ModelOption = None,
    strength: float = typer.Option(RENDER.strength, help="0 to 1: how much of the style to blend over the photo."),
    preserve_color: bool = typer.Option(False, "--preserve-color",
                                        help="Keep the photo's colours; take only light and shade from the style."),
    max_size: Optional[int] = typer.Option(None, help="Downscale photos first so the long side is at most N px."),
    quality: int = typer.Option(FILES.quality, help="JPEG and WebP quality, 1 to 100."),
    fmt: Optional[ImageFormat] = typer.Option(None, "--format", case_sensitive=False,
                                      help="Output format (jpg, png, webp, bmp, tiff) for derived names and stdout; "
                                           "default: each input's own."),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="Redo outputs that exist (default: skip them, so a rerun resumes)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON line per output, with the device, precision "
                                                       "and seconds per stage."),
    device: DeviceOption = "auto",
    precision: Precision = typer.Option("auto", case_sensitive=False,
                                        help="auto (fp16 on CUDA, fp32 elsewhere), fp32, fp16 or bf16."),
    tile_size: Optional[int] = typer.Option(
        None, help="Render images longer than N px in overlapping tiles (default: what fits the free memory on "
                   f"CUDA, {AUTO_TILE_ONNX} on ONNX Runtime, {AUTO_TILE_OTHER} elsewhere; smaller if memory runs "
                   "out; 0: never)."),
    work_size: int = typer.Option(
        RENDER.work_size, help="Stroke size: photos longer than N px are painted at N px and their detail added "
                               "back at full size, so strokes look as on a photo N px long (smaller: larger "
                               "strokes; 0: paint at full resolution, the network's own stroke size)."),
    max_pixels: int = typer.Option(
        FILES.max_pixels, help="Refuse images with more pixels than this (a decompression-bomb guard; 0: no limit)."),
    workers: int = typer.Option(FILES.workers, min=0, help=f"{WORKERS_HELP} Threads here."),
    style_image: Optional[Path] = typer.Option(
        None, "--style-image", help="Any picture as the style: its style is learned first (minutes on a CPU, "
                                    "cached: instant the next time), then applied."),
    content: Optional[Path] = typer.Option(
        None, "--content", "-c", help="With --style-image: folder of photos to learn on (default: the inputs)."),
    save_style_to: Optional[Path] = typer.Option(
        None, "--save-style-to", help="With --style-image: also save the model plus the new style as a checkpoint."),
    style_steps: Optional[int] = typer.Option(
        None, "--style-steps", min=1, help=f"With --style-image: learning steps (default on a CPU: "
                                           f"{QUICK_CPU['steps']}, a quick first look; more: closer to the painting)."),
    backend: Backend = typer.Option(
        "auto", case_sensitive=False, help="auto (ONNX Runtime on a CPU when onnxruntime and onnx are installed: starts without "
                     "PyTorch; else PyTorch), torch or onnx."),
    smoothing: float = typer.Option(
        VIDEO.smoothing, help="Videos: weight of the previous frame's normalization statistics, 0 to below 1; "
                  "steadies colours from frame to frame (0: every frame on its own)."),
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Stylize photos, folders and videos; outputs that exist are skipped, inputs are never overwritten.

    Examples:

      stylize apply photo.jpg --style starry

      stylize apply ~/Pictures/trip -o ~/Pictures/trip-starry --style starry

      stylize apply photo.jpg --style starry:0.7,wave:0.3 -o mix.png

      stylize apply clip.mp4 --style starry -o clip-starry.mp4    (needs the video extra)

      cat in.jpg | stylize apply - --style wave > out.jpg

      stylize apply photo.jpg --style-image painting.jpg
    """
    from ..apply import batch, onnx_backend as onnx_engine
    from ..runtime import distributed
    from ..config import VideoSettings
    from ..apply.video import is_video

    stdout = typer.get_binary_stream("stdout")
    to_stdout = output == batch.STDIO or (output is None and inputs == [batch.STDIO])
    if to_stdout and stdout.isatty():
        fail("refusing to write image data to a terminal; redirect stdout (> out.jpg) or use -o FILE")
    if batch.STDIO in inputs and sys.stdin.isatty():
        fail("'-' reads a photo from stdin, but stdin is a terminal; pipe one in (< photo.jpg)")
    rank, world_size = distributed.world()
    engine = own_process()
    say = verbosity(quiet, verbose)
    precision, backend, fmt = str(precision), str(backend), fmt and str(fmt)
    with user_errors(2):  # the settings check the options' values
        settings = ApplySettings(strength=strength, preserve_color=preserve_color, max_size=max_size,
                                 tile_size=tile_size, work_size=work_size)
        options = BatchOptions(quality=quality, format=fmt, overwrite=overwrite, workers=workers,
                               max_pixels=max_pixels)
        video = VideoSettings(smoothing=smoothing)
    with user_errors():
        if style_image is None and (content is not None or save_style_to is not None or style_steps is not None):
            raise StylizeError("--content, --save-style-to and --style-steps go with --style-image")
        use_onnx = onnx_engine.onnx_backend_applies(backend, device, precision)
        if use_onnx and (style_image is not None or world_size > 1 or any(is_video(i) for i in inputs)):
            if backend == "onnx":
                raise StylizeError("--backend onnx renders photos in one process; videos, --style-image and "
                                   "torchrun run on torch")
            use_onnx = False
        with say.stage("load"):
            if use_onnx:
                stylizer = onnx_stylizer(model, say)
                say.detail("device: cpu (ONNX Runtime)")
            else:
                stylizer, style = torch_stylizer(model, device, precision, style_image, content, inputs, style,
                                                 save_style_to, engine, say, overwrite, style_steps)
        say.detail(f"precision: {stylizer.precision}")
        tasks = batch.plan(inputs, output, stylizer.choose(style), options)
        mine = distributed.shard(tasks, rank, world_size, key=lambda task: task.key)
        batch.check_folders(mine)
    total = sum(len(task.outputs) for task in mine)
    show = say.progress and not rank
    bar = Progress(total, "img", desc="apply", enabled=show and total > 1)
    stylizer.on_tile = TileProgress(enabled=show)

    def on_result(result: batch.Result) -> None:
        bar.advance()
        if as_json:
            record = {**result.to_dict(), "device": str(stylizer.device), "precision": stylizer.precision}
            typer.echo(json.dumps(record), err=to_stdout)
        if say.verbose and result.stages:
            say.detail(f"{result.output}: " + ", ".join(f"{k} {v:.2f} s" for k, v in result.stages.items()))

    frames = FrameBar(enabled=show)
    try:
        with say.stage("render"):
            summary = batch.run(stylizer, mine, settings, options, stdin=typer.get_binary_stream("stdin"),
                                stdout=stdout, on_result=on_result, video=video, on_frame=frames)
    except KeyboardInterrupt:
        fail("interrupted; every finished output is saved, run the same command again to resume", 130)
    finally:
        frames.close()
        stylizer.on_tile.close()
        bar.close()
    merged = batch.Summary.merge(distributed.gather(summary))
    distributed.close()
    if rank == 0:  # the other ranks exit 0 so that torchrun does not stop rank 0 mid-report
        for result in merged.failed:
            echo(f"error: {result.error}")
        outcome = merged.describe()
        if outcome is not None:
            say.say(outcome, err=True)
        if merged.failed:
            raise typer.Exit(1)


@app.command()
def sheet(
    photo: Path = typer.Argument(..., metavar="PHOTO", help="The photo to show every style on."),
    output: Path = typer.Option(..., "--output", "-o", help="Image file to write the sheet to."),
    model: ModelOption = None,
    cell: int = typer.Option(SHEET_CELL[1], min=SHEET_CELL[0], max=SHEET_CELL[2],
                             help="Long side of each rendering, in pixels."),
    columns: Optional[int] = typer.Option(None, min=1, max=SHEET_MAX_COLUMNS,
                                          help="Cells per row (default: a near-square grid)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUTPUT if it exists."),
    device: DeviceOption = "auto",
    backend: Backend = typer.Option("auto", case_sensitive=False, help="auto, torch or onnx (as for apply)."),
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Render every style of a model on one photo, in a labelled grid, to choose one by eye.

    Examples:

      stylize sheet photo.jpg -o styles.jpg

      stylize sheet photo.jpg -o mine.png -m my-styles.safetensors --cell 192 --columns 6
    """
    from ..io.formats import output_extension_ok
    from ..io.images import read_image
    from ..apply.onnx_backend import onnx_backend_applies
    from ..apply.sheet import style_sheet

    say = verbosity(quiet, verbose)
    with user_errors():
        if not output_extension_ok(output):
            raise StylizeError(f"-o {output}: use an image extension (.jpg, .png, ...)")
        if output.exists() and not overwrite:
            raise StylizeError(f"{output} exists; pass --overwrite to replace it")
        if output.resolve() == photo.resolve():
            raise StylizeError(f"-o {output} is the input photo; write the sheet to a new file")
        if onnx_backend_applies(backend, device, "auto"):
            stylizer = onnx_stylizer(model, say)
        else:
            stylizer = torch_stylizer(model, device, "auto", None, None, [], None, None, own_process(), say)[0]
        picture = style_sheet(stylizer, read_image(photo, arrays=stylizer.arrays), cell=cell, columns=columns)
        write_pil(output, picture)
    say.say(f"wrote {output} ({len(stylizer.styles)} styles)")


def write_pil(path: Path, picture: object) -> None:
    """Save a PIL image atomically, its format from the extension."""
    import numpy as np

    from ..io.images import write_image

    pixels = np.asarray(picture, dtype=np.float32).transpose(2, 0, 1) / 255
    write_image(path, pixels)


@app.command()
def info(
    as_json: bool = typer.Option(False, "--json", help="Print the facts as JSON."),
    devices: bool = typer.Option(False, "--devices", help="Also ask PyTorch which GPUs it can use "
                                                          "(loading it takes seconds)."),
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Show versions, devices, the backend apply uses on a CPU, and the model files stylize sees.

    Examples:

      stylize info

      stylize info --json
    """
    from ..runtime.info import describe, gather

    verbosity(quiet, verbose)  # the facts are the result: -q and -v change nothing here

    facts = gather(ask_torch=devices)
    if as_json:
        typer.echo(json.dumps(facts, indent=2))
        return
    for line in describe(facts):
        echo(line, err=False)


def main(args: list[str] | None = None) -> int:
    """Console-script entry point: run a command, report any error in one line, return the exit code."""
    # Click's base of usage errors, found from typer's public BadParameter: newer typers carry
    # their own copy of click, older ones use the click package.
    usage_error = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
    warnings.showwarning = show_warning
    try:
        code = app(args=args, standalone_mode=False)
    except usage_error as exc:  # usage errors: a bad option value, an unknown option, a missing argument
        if type(exc).__name__ == "NoArgsIsHelpError":  # plain `stylize`: typer has printed the help
            return exc.exit_code
        command = getattr(getattr(exc, "ctx", None), "command_path", "stylize")
        echo(f"error: {' '.join(exc.format_message().split())} (see '{command} --help')")
        return exc.exit_code
    except typer.Abort:
        return 130
    except Exception as exc:  # a bug, or an error from a library underneath (torch...)
        if isinstance(exc, ModuleNotFoundError) and provides("torch", exc):  # a path require() missed
            echo(f"error: {missing_extra('torch', 'this command')}")
            return 1
        if os.environ.get(DEBUG_VARIABLE) == "1":
            traceback.print_exc()
        echo(f"error: {type(exc).__name__}: {first_line(exc)} (--debug or {DEBUG_VARIABLE}=1 shows where)")
        return 1
    return code if isinstance(code, int) else 0


def show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, file=None,
                 line: str | None = None) -> None:
    """Warnings as one ``warning:`` line, without the source line Python shows."""
    echo(f"warning: {message}")


if __name__ == "__main__":
    sys.exit(main())
