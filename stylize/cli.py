"""The ``stylize`` command line: parse, call the library, report.

Every command turns a :class:`~stylize.errors.StylizeError` into one line on stderr
and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer

from .errors import StylizeError

app = typer.Typer(
    help="Fast neural style transfer: train styles in minutes, apply them to photos and whole folders.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def fail(message: str, code: int = 1) -> None:
    """Print ``error: message`` on stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Report library errors as one line and exit 1."""
    try:
        yield
    except StylizeError as exc:
        fail(str(exc))


def is_main_process() -> bool:
    """False on the non-zero ranks of a torchrun job, which must stay quiet."""
    import os

    return os.environ.get("RANK", "0") == "0"


@app.command()
def train(
    style_dir: Path = typer.Argument(..., help="Folder of paintings; each file becomes a style named by its stem."),
    content: Path = typer.Option(..., "--content", "-c", help="Folder of photos to train on (searched recursively)."),
    output: Path = typer.Option(Path("model.safetensors"), "--output", "-o",
                                help="Checkpoint to write; its .log.jsonl and .previews/ go beside it."),
    steps: int = typer.Option(40_000, min=1, help="Total optimizer steps (with --resume: the new total)."),
    batch_size: int = typer.Option(16, min=1, help="Photos per step (split across torchrun processes)."),
    image_size: int = typer.Option(256, min=32, help="Side of the square photo crops."),
    style_size: int = typer.Option(512, min=32, help="Long side the paintings are resized to."),
    lr: float = typer.Option(1e-3, min=0.0, help="Adam learning rate, cosine-decayed to 1% over the run."),
    content_weight: float = typer.Option(1.0, min=0.0, help="Weight of the content loss (relu2_2)."),
    style_weight: float = typer.Option(2.0, min=0.0, help="Weight of the Gram style loss; higher paints more."),
    tv_weight: float = typer.Option(0.0, min=0.0, help="Weight of the total-variation smoother."),
    preset: str = typer.Option("johnson", help="Network size: 'johnson' (the paper's) or 'small' (fast on CPUs)."),
    seed: int = typer.Option(0, help="Seed for the initial weights and the data sequence."),
    checkpoint_every: int = typer.Option(1000, min=1, help="Write the checkpoint every N steps."),
    preview_every: int = typer.Option(1000, min=1, help="Write a preview grid every N steps."),
    preview: Optional[Path] = typer.Option(None, help="Photo for the preview grids (default: the first content photo)."),
    workers: int = typer.Option(4, min=0, help="Data-loading worker processes."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps."),
    vgg_weights: Optional[Path] = typer.Option(None, help="Use a torchvision-format VGG16 state dict as the loss network."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run saved in --output (same settings, new --steps)."),
) -> None:
    """Train one network that holds every painting in STYLE_DIR as a named style.

    Example: stylize train paintings/ --content photos/ -o my-styles.safetensors --steps 20000
    """
    from tqdm import tqdm

    from .loss import LossWeights
    from .train import TrainSettings, train as run_training

    settings = TrainSettings(
        steps=steps, batch_size=batch_size, image_size=image_size, style_size=style_size, lr=lr,
        weights=LossWeights(content=content_weight, style=style_weight, tv=tv_weight), preset=preset, seed=seed,
        checkpoint_every=checkpoint_every, preview_every=preview_every, workers=workers,
    )
    bar = tqdm(total=steps, unit="step", dynamic_ncols=True, disable=not is_main_process())

    def on_step(report) -> None:
        bar.n = report.step
        bar.set_postfix({"img/s": f"{report.images_per_s:.0f}",
                         **{k: f"{v:.3g}" for k, v in report.losses.items()}}, refresh=False)
        bar.update(0)

    with user_errors():
        result = run_training(style_dir, content, output, settings, device=device, vgg_weights=vgg_weights,
                              resume=resume, preview=preview, on_step=on_step)
    bar.close()
    if not is_main_process():
        return
    if result.interrupted:
        typer.echo(f"interrupted at step {result.step}; saved {result.checkpoint}; continue with --resume", err=True)
        raise typer.Exit(130)
    typer.echo(f"saved {result.checkpoint} (step {result.step})")


@app.command()
def styles(
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="Checkpoint (default: the shipped model)."),
    as_json: bool = typer.Option(False, "--json", help="Print the metadata as JSON."),
) -> None:
    """List the styles in a checkpoint, with its metadata."""
    from . import checkpoint
    from .weights import default_model

    with user_errors():
        path = model or default_model()
        meta = checkpoint.read_metadata(path)
    if as_json:
        typer.echo(json.dumps(meta, indent=2))
        return
    config = meta.get("config", {})
    typer.echo(f"{path}: {len(meta['styles'])} styles, step {meta.get('step', 0)}, "
               f"channels {config.get('channels')}, {config.get('n_residual')} residual blocks")
    for name in meta["styles"]:
        typer.echo(f"  {name}")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    sys.exit(main())
