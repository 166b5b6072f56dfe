"""Conventions every command follows: flags, help, verbosity, progress, storage precision."""

from __future__ import annotations

import json

from pathlib import Path

import pytest
from conftest import make_photo, make_tiny_model
from safetensors import safe_open
from typer.testing import CliRunner

from stylize.model import checkpoint
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


COMMANDS = ["apply", "styles", "train", "add-style", "remove-style", "rename-style", "export", "evaluate", "sheet",
            "info"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_examples_quiet_and_verbose(command: str) -> None:
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Examples:" in result.stdout and f"stylize {command} " in result.stdout
    for flag in ("--quiet", "-q", "--verbose", "-v"):
        assert flag in result.stdout
    if command not in ("train", "info"):  # train writes -o; info reads none; the others read a model with -m
        assert "--model" in result.stdout and "-m" in result.stdout


@pytest.mark.parametrize("command", ["apply", "styles"])
def test_the_style_tie_rule_is_in_the_help(command: str) -> None:
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert "starry_night_over_the_rhone" in " ".join(result.stdout.split())


def test_version() -> None:
    from stylize import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"stylize {__version__}"


def test_model_is_dash_m_everywhere_and_the_old_positional_spelling_still_works(tmp_path: Path, tiny_model: Path):
    spellings = {
        "remove-m": ["remove-style", "-m", str(tiny_model), "the_scream"],
        "remove-old": ["remove-style", str(tiny_model), "the_scream"],
        "rename-m": ["rename-style", "-m", str(tiny_model), "the_scream", "scream"],
        "rename-old": ["rename-style", str(tiny_model), "the_scream", "scream"],
        "export-m": ["export", "-m", str(tiny_model)],
        "export-old": ["export", str(tiny_model)],
    }
    for label, args in spellings.items():
        out = tmp_path / f"{label}.safetensors"
        result = runner.invoke(app, [*args, "-o", str(out)])
        assert result.exit_code == 0, (label, result.output)
        expected = ["starry_night", "great_wave", "scream" if "rename" in label else "the_scream"]
        assert checkpoint.load(out).styles == ([s for s in expected if s != "the_scream"]
                                               if "remove" in label else expected), label


def test_edits_default_to_the_shipped_model(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("STYLIZE_MODEL", raising=False)
    out = tmp_path / "fewer.safetensors"
    result = runner.invoke(app, ["remove-style", "the_scream", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert len(checkpoint.load(out).styles) == 21 and checkpoint.stores_half(out)


def test_apply_takes_dash_c_for_content(tmp_path: Path, tiny_model: Path) -> None:
    photo = make_photo(tmp_path / "p.png")
    result = runner.invoke(app, ["apply", str(photo), "-m", str(tiny_model), "-s", "wave", "-c", str(tmp_path)])
    assert result.exit_code == 1 and "--content, --save-style-to and --style-steps go with --style-image" in result.stderr


def test_workers_zero_means_no_background_work_in_apply_too(tmp_path: Path, tiny_model: Path) -> None:
    for i in range(3):
        make_photo(tmp_path / "in" / f"{i}.png", seed=i)
    result = runner.invoke(app, ["apply", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", str(tiny_model),
                                 "-s", "wave", "--workers", "0"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0.png", "1.png", "2.png"]


def test_quiet_prints_only_errors(tmp_path: Path, tiny_model: Path) -> None:
    photo = make_photo(tmp_path / "p.png")
    result = runner.invoke(app, ["apply", str(photo), "-m", str(tiny_model), "-s", "wave", "-q",
                                 "-o", str(tmp_path / "a.png")])
    assert result.exit_code == 0 and result.output == ""
    result = runner.invoke(app, ["remove-style", "-m", str(tiny_model), "great_wave", "-q", "-o",
                                 str(tmp_path / "r.safetensors")])
    assert result.exit_code == 0 and result.output == "" and (tmp_path / "r.safetensors").is_file()
    result = runner.invoke(app, ["apply", str(tmp_path / "none.png"), "-m", str(tiny_model), "-s", "wave", "-q"])
    assert result.exit_code == 1 and result.stderr.startswith("error: ")
    result = runner.invoke(app, ["styles", "-q", "-v"])
    assert result.exit_code == 2 and "exclude each other" in result.stderr


def test_verbose_and_json_say_device_precision_and_stage_times(tmp_path: Path, tiny_model: Path) -> None:
    photo = make_photo(tmp_path / "p.png")
    result = runner.invoke(app, ["apply", str(photo), "-m", str(tiny_model), "-s", "wave", "-v", "--json",
                                 "--device", "cpu", "--precision", "bf16", "-o", str(tmp_path / "a.png")])
    assert result.exit_code == 0, result.output
    assert "device: cpu" in result.stderr and "precision: bf16" in result.stderr
    assert "load: " in result.stderr and "render: " in result.stderr
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert record["device"] == "cpu" and record["precision"] == "bf16"
    assert set(record["stages"]) == {"read", "render", "write"} and all(v >= 0 for v in record["stages"].values())


def test_verbose_auto_device_says_why_it_is_the_cpu(tmp_path: Path, tiny_model: Path, monkeypatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    photo = make_photo(tmp_path / "p.png")
    result = runner.invoke(app, ["apply", str(photo), "-m", str(tiny_model), "-s", "wave", "-v", "--backend", "torch"])
    assert result.exit_code == 0, result.output
    assert "device: cpu (" in result.stderr  # why: no GPU here, or the broken one
    result = runner.invoke(app, ["apply", str(photo), "-m", str(tiny_model), "-s", "wave", "-v", "--backend", "onnx",
                                 "-o", str(tmp_path / "onnx.png")])
    assert result.exit_code == 0, result.output
    assert "device: cpu (ONNX Runtime)" in result.stderr and "precision: fp32" in result.stderr


def test_a_tiled_photo_shows_plain_progress_lines_when_not_on_a_terminal(tmp_path: Path, tiny_model: Path) -> None:
    photo = make_photo(tmp_path / "big.png", size=(400, 300))
    result = runner.invoke(app, ["apply", str(photo), "-m", str(tiny_model), "-s", "wave", "--tile-size", "128",
                                 "-o", str(tmp_path / "out.png")])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("tiles: ")]
    assert lines and lines[-1].startswith("tiles: ") and "/" in lines[-1]
    done, total = lines[-1].split()[1].split("/")
    assert done == total and int(total) > 1
    assert "\r" not in result.stderr


def test_training_writes_plain_progress_lines_to_a_log(tmp_path: Path, style_dir: Path, photo_dir: Path) -> None:
    pytest.importorskip("onnx")
    out = tmp_path / "m.safetensors"
    result = runner.invoke(app, ["train", str(style_dir), "-c", str(photo_dir), "-o", str(out), "--steps", "3",
                                 "--batch-size", "2", "--image-size", "32", "--style-size", "48", "--preset", "small",
                                 "--workers", "0", "--device", "cpu", "-v"])
    assert result.exit_code == 0, result.output
    assert "\r" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("train: ")]
    assert lines[0].startswith("train: 1/3 steps, img/s ") and lines[-1].startswith("train: 3/3 steps, img/s ")
    assert "device: cpu" in result.stderr and "setup: " in result.stderr and "steps: " in result.stderr
    assert f"saved {out} (step 3)" in result.stdout
