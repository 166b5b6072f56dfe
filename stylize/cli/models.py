"""Commands on model files: ``remove-style``, ``rename-style``, ``export`` and ``styles``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from ..runtime.extras import require
from .common import (EditedModel, ModelOption, NewCheckpoint, Quiet, ReplaceOutput, Verbose, chosen_model, echo, fail,
                     model_and_rest, user_errors, verbosity)
from .progress import Verbosity

if TYPE_CHECKING:
    from ..model.checkpoint import Checkpoint


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
        from ..apply.graphs import export_graph

        with user_errors(), say.stage("export"):
            styles = export_graph(path, onnx, overwrite=overwrite)
        report_saved(onnx, styles, say)
        return
    edit_checkpoint(path, output, lambda ckpt: ckpt, say, half=half, overwrite=overwrite)


def edit_checkpoint(model: Path, output: Path, edit: Callable[[Checkpoint], Checkpoint], say: Verbosity, *,
                    half: bool | None = None, overwrite: bool = False) -> None:
    """:func:`~stylize.model.edits.write_edited`, then list the styles written."""
    with user_errors():
        require("torch", "editing a model")
    from ..model.edits import write_edited

    with user_errors(), say.stage("edit"):
        edited = write_edited(model, output, edit, half=half, overwrite=overwrite)
    report_saved(output, edited.styles, say)


def report_saved(path: Path, styles: list[str], say: Verbosity) -> None:
    """Say which model file was written, its size and its styles."""
    say.say(f"saved {path} ({path.stat().st_size / 1e6:.1f} MB): {len(styles)} styles: {', '.join(styles)}")


def styles(
    model: ModelOption = None,
    as_json: bool = typer.Option(False, "--json", help="Print the metadata as JSON."),
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """List the styles in a checkpoint, in order, with its architecture and training step.

    A style with a work size of its own (set-work-size) shows it: apply paints photos longer
    than that at that size, unless --work-size says otherwise.

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
    sizes = meta.get("work_sizes", {})
    for name in meta["styles"]:
        size = sizes.get(name)
        echo(f"  {name}" + ("" if size is None else f"  (work size {size or 'full resolution'})"), err=False)
