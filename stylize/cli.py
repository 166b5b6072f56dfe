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


@app.command()
def evaluate(
    model: Path = typer.Argument(..., help="Checkpoint to evaluate."),
    styles_dir: Path = typer.Option(..., "--styles", help="Folder of the paintings the model was trained on."),
    photos: Path = typer.Option(..., "--photos", help="Folder of test photos."),
    size: int = typer.Option(512, min=32, help="Long side of the test photos."),
    iterations: str = typer.Option("50,100,300", help="L-BFGS budgets of the Gatys baseline, comma-separated."),
    limit: Optional[int] = typer.Option(None, min=1, help="Use only the first N photos (quick runs)."),
    only: Optional[str] = typer.Option(None, help="Comma-separated style names (default: every style found)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps."),
    vgg_weights: Optional[Path] = typer.Option(None, help="The loss network, if not the default VGG16."),
) -> None:
    """Compare the network's perceptual loss with Gatys et al.'s L-BFGS optimization, per style.

    Prints a Markdown table: the network's mean content/style/total loss on the photos, and the
    baseline's total after each iteration budget (same VGG16, same loss weights as training).
    """
    from tqdm import tqdm

    from . import checkpoint
    from .data import load_styles
    from .device import resolve_device
    from .evaluate import evaluate as run_evaluation, markdown_table
    from .train import TrainSettings
    from .vgg import load_vgg

    with user_errors():
        try:
            budgets = sorted({int(b) for b in iterations.split(",")})
        except ValueError:
            raise StylizeError(f"--iterations {iterations!r}: expected comma-separated integers, e.g. 50,100,300")
        torch_device = resolve_device(device)
        ckpt = checkpoint.load(model)
        settings = TrainSettings.from_dict(ckpt.training)
        names, paintings = load_styles(styles_dir, settings.style_size)
        wanted = set(only.split(",")) if only else set(ckpt.styles)
        chosen = {n: p for n, p in zip(names, paintings) if n in wanted and n in ckpt.styles}
        if not chosen:
            raise StylizeError(f"none of the model's styles has a painting in {styles_dir}")
        bar = tqdm(total=len(chosen), unit="style", dynamic_ncols=True)

        def on_progress(name: str, done: int, total: int) -> None:
            bar.set_postfix_str(f"{name} {done}/{total}")
            if done == total:
                bar.update(1)

        scores = run_evaluation(ckpt, chosen, photos, weights=settings.weights, vgg=load_vgg(vgg_weights, torch_device),
                                size=size, budgets=budgets, limit=limit, device=torch_device, on_progress=on_progress)
        bar.close()
    typer.echo(markdown_table(scores))


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    sys.exit(main())
