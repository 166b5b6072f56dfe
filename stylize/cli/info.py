"""``stylize info``: versions, devices, the backend apply uses, the model files stylize sees."""

from __future__ import annotations

import json

import typer

from .common import Quiet, Verbose, echo, verbosity


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
