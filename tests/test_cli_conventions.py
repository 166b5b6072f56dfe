"""Conventions every command follows: flags, help, verbosity, progress, storage precision."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_tiny_model
from safetensors import safe_open
from typer.testing import CliRunner

from stylize import checkpoint
from stylize.cli import app

runner = CliRunner()


def stored_dtypes(path: Path) -> set[str]:
    with safe_open(str(path), framework="pt") as handle:
        return {handle.get_slice(key).get_dtype() for key in handle.keys()}


@pytest.mark.parametrize("half", [True, False], ids=["fp16", "fp32"])
def test_style_edits_keep_the_models_storage_precision(tmp_path: Path, half: bool) -> None:
    source = make_tiny_model(tmp_path / "train.safetensors")
    lean = tmp_path / "lean.safetensors"
    result = runner.invoke(app, ["export", str(source), "-o", str(lean), "--half" if half else "--full"])
    assert result.exit_code == 0, result.output
    for args, out in ((["remove-style", str(lean), "great_wave"], "removed"),
                      (["rename-style", str(lean), "great_wave", "wave"], "renamed")):
        result = runner.invoke(app, [*args, "-o", str(tmp_path / f"{out}.safetensors")])
        assert result.exit_code == 0, result.output
        assert stored_dtypes(tmp_path / f"{out}.safetensors") == ({"F16"} if half else {"F32"})
        assert checkpoint.stores_half(tmp_path / f"{out}.safetensors") is half
    assert (tmp_path / "renamed.safetensors").stat().st_size == pytest.approx(lean.stat().st_size, rel=0.01)
