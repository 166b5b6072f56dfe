"""The models shipped in weights/: the default one `stylize apply` uses without --model, and the CPU one."""

from pathlib import Path

import numpy as np
import pytest
from conftest import make_photo
from PIL import Image
from typer.testing import CliRunner

from stylize.model import checkpoint
from stylize.cli import app
from stylize.io.weights import DEFAULT_MODEL_NAME, WEIGHTS_DIR

SHIPPED = WEIGHTS_DIR / DEFAULT_MODEL_NAME
SMALL = WEIGHTS_DIR / "stylize-22-small.safetensors"
runner = CliRunner()


@pytest.mark.parametrize("model, preset", [(SHIPPED, "johnson"), (SMALL, "small")])
def test_the_shipped_models_are_lean_and_hold_the_22_paintings(monkeypatch, model: Path, preset: str):
    monkeypatch.delenv("STYLIZE_MODEL", raising=False)
    meta = checkpoint.read_metadata(model)
    assert len(meta["styles"]) == 22 and {"starry_night", "great_wave", "the_scream"} <= set(meta["styles"])
    assert meta["training"]["preset"] == preset
    assert model.stat().st_size <= 20_000_000
    ckpt = checkpoint.load(model)
    assert ckpt.optimizer_state is None
    assert all(p.dtype.is_floating_point and p.dtype.itemsize == 4 for p in ckpt.net.parameters())
    listed = runner.invoke(app, ["styles", *(["--model", str(model)] if model != SHIPPED else [])])
    assert listed.exit_code == 0 and all(name in listed.output for name in meta["styles"])


@pytest.mark.parametrize("model_args", [[], ["--model", str(SMALL)]], ids=["default", "small"])
def test_apply_uses_them_with_the_short_style_names(tmp_path: Path, monkeypatch, model_args: list[str]):
    monkeypatch.delenv("STYLIZE_MODEL", raising=False)
    photo = make_photo(tmp_path / "photo.png", size=(64, 48))
    outputs = []
    for style in ("starry", "wave", "scream"):
        out = tmp_path / f"{style}.png"
        result = runner.invoke(app, ["apply", str(photo), "--style", style, "-o", str(out), *model_args])
        assert result.exit_code == 0, result.output
        outputs.append(np.asarray(Image.open(out), dtype=np.float32))
    assert all(o.shape == (48, 64, 3) for o in outputs)
    # Three different paintings, three different renderings.
    assert min(np.abs(a - b).mean() for a, b in [(outputs[0], outputs[1]), (outputs[0], outputs[2]),
                                                  (outputs[1], outputs[2])]) > 2


def test_short_model_names_pick_the_shipped_files(tmp_path: Path, monkeypatch):
    from stylize.io.weights import SHIPPED_MODELS, resolve_model

    monkeypatch.chdir(tmp_path)
    assert resolve_model("default") == SHIPPED and resolve_model("small") == SMALL
    assert set(SHIPPED_MODELS) == {"default", "small", "fast"}
    assert resolve_model("other.safetensors") == Path("other.safetensors")  # a path stays a path
    (tmp_path / "small").write_bytes(b"x")
    assert resolve_model("small") == Path("small")  # a file of that name wins
    monkeypatch.setenv("STYLIZE_MODEL", "small")
    (tmp_path / "small").unlink()
    from stylize.io.weights import default_model

    assert default_model() == SMALL


def test_short_names_on_the_command_line(tmp_path: Path, monkeypatch):
    from stylize.io import weights

    monkeypatch.delenv("STYLIZE_MODEL", raising=False)
    listed = runner.invoke(app, ["styles", "-m", "small"])
    assert listed.exit_code == 0 and str(SMALL) in listed.output
    monkeypatch.setenv("STYLIZE_MODEL", "small")
    assert str(SMALL) in runner.invoke(app, ["styles"]).output
    monkeypatch.setattr(weights, "WEIGHTS_DIR", tmp_path)  # a wheel without the fast model
    missing = runner.invoke(app, ["styles", "-m", "fast"])
    assert missing.exit_code == 1 and "'fast' is not shipped" in missing.output
