"""``stylize evaluate``: the network's loss beside Gatys et al.'s optimization, as a table."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..config import EVALUATE_BUDGETS, EVALUATE_SIZE
from ..errors import StylizeError
from ..runtime.extras import require
from ..runtime.process import own_process
from .common import DeviceOption, ModelOption, Quiet, Verbose, chosen_model, pick_device, user_errors, verbosity
from .progress import Progress


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
    from ..train.evaluate import MAX_BUDGET, evaluate_model, report

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
        bars: list[Progress] = []

        def on_start(styles: list[str]) -> None:
            bars.append(Progress(len(styles), "style", desc="evaluate", enabled=say.progress))

        def on_progress(name: str, done: int, total: int) -> None:
            bars[0].update(bars[0].n + (done == total), {"style": f"{name} {done}/{total}"})

        try:
            with say.stage("evaluate"):
                scores = evaluate_model(chosen_model(model or model_arg), styles_dir, photos,
                                        only=only.split(",") if only else None, compare=compare, size=size,
                                        budgets=budgets, limit=limit, device=pick_device(device, say),
                                        vgg_weights=vgg_weights, cache=cache_dir, use_cache=not no_cache,
                                        on_start=on_start, on_progress=on_progress)
        finally:
            for bar in bars:
                bar.close()
    typer.echo(report(scores))
