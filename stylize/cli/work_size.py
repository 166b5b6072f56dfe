"""``stylize set-work-size``: store the size each style is painted at by default."""

from __future__ import annotations

import typer

from .common import (EditedModel, NewCheckpoint, Quiet, ReplaceOutput, Verbose, chosen_model, fail, model_and_rest,
                     verbosity)
from .models import edit_checkpoint

DEFAULT = "default"
"""The SIZE that takes a style's own size away (it is then painted at ``--work-size``'s default)."""


def set_work_size(
    pairs: list[str] = typer.Argument(..., metavar="NAME=SIZE...",
                                      help="Style names, as 'stylize styles' lists them, each with its size in px "
                                           f"(0: full resolution; '{DEFAULT}': none of its own)."),
    model: EditedModel = None,
    output: NewCheckpoint = ...,
    overwrite: ReplaceOutput = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Write a copy of the model in which each NAME is painted at SIZE px by default (the weights are unchanged).

    Photos longer than a style's size are painted at that long side and their detail added
    back at full size, so a smaller size paints larger strokes. apply --work-size overrides
    it; a mix is painted at the size of its heaviest style. Names are matched exactly (case,
    spaces, '-' and '_' aside).

    Examples:

      stylize set-work-size starry_night=512 mondrian_composition=384 -o strokes.safetensors

      stylize set-work-size -m my-styles.safetensors sunset=default -o my-styles-v2.safetensors
    """
    from ..model.edits import set_work_sizes

    say = verbosity(quiet, verbose)
    model, pairs = model_and_rest(model, pairs)
    if not pairs:
        fail("give at least one NAME=SIZE", 2)
    sizes: dict[str, int | None] = {}
    for pair in pairs:
        name, equals, size = pair.rpartition("=")
        if not equals or not name.strip() or not (size.strip().isdigit() or size.strip() == DEFAULT):
            fail(f"bad NAME=SIZE {pair!r}: SIZE is a number of pixels, 0 (full resolution) or '{DEFAULT}', "
                 "e.g. starry_night=512", 2)
        sizes[name] = None if size.strip() == DEFAULT else int(size)
    edit_checkpoint(chosen_model(model), output, lambda ckpt: set_work_sizes(ckpt, sizes), say, overwrite=overwrite)
