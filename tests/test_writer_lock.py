"""One writer per output (stylize.io.lock): train, distill, add-style and apply --save-style-to
refuse, in one line and before their work, an output another live run is writing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import make_painting
from typer.testing import CliRunner

from stylize.cli import app
from stylize.errors import StylizeError
from stylize.io.lock import lock_path, writer_lock, writes

pytest.importorskip("onnx")


@writes("output")
def write_and_look(output: Path | None, fail: bool = False) -> bool:
    """Whether the output's lock is there while the function runs."""
    if fail:
        raise ValueError("the work failed")
    return output is not None and lock_path(output).exists()


def test_writes_holds_the_lock_while_the_function_runs(tmp_path):
    out = tmp_path / "m.safetensors"
    assert write_and_look(out) and not lock_path(out).exists()
    with pytest.raises(ValueError):
        write_and_look(output=out, fail=True)
    assert not lock_path(out).exists()  # removed on an error too
    assert not write_and_look(None) and os.listdir(tmp_path) == []  # nothing to write: no lock


def test_a_second_writer_is_refused_and_the_first_keeps_its_lock(tmp_path):
    out = tmp_path / "m.safetensors"
    with writer_lock(out):
        with pytest.raises(StylizeError, match=f"another run \\(process {os.getpid()}\\) is writing it"):
            write_and_look(out)
        assert lock_path(out).read_text() == f"{os.getpid()}\n"
    assert not lock_path(out).exists()


@pytest.fixture
def commands(tmp_path, tiny_model, style_dir, photo_dir) -> dict[str, list[str]]:
    painting = make_painting(tmp_path / "hokusai.png", seed=5)
    photo = next(photo_dir.iterdir())
    cpu = ["--device", "cpu"]
    return {
        "train": ["train", str(style_dir), "-c", str(photo_dir), "--steps", "2", "--batch-size", "2",
                  "--image-size", "32", "--style-size", "48", "--preset", "small", "--workers", "0", *cpu],
        "distill": ["distill", str(tiny_model), "-c", str(photo_dir), "--steps", "2", "--batch-size", "2",
                    "--image-size", "32", "--resize", "48"],
        "add-style": ["add-style", str(painting), "-m", str(tiny_model), "-c", str(photo_dir), "--steps", "2", *cpu],
        "apply --save-style-to": ["apply", str(photo), "-m", str(tiny_model), "--style-image", str(painting),
                                  "-o", str(tmp_path / "out.png"), *cpu],
    }


@pytest.mark.parametrize("command", ["train", "distill", "add-style", "apply --save-style-to"])
def test_every_writer_of_a_checkpoint_is_refused_while_another_run_writes_it(commands, command, tmp_path):
    out = tmp_path / "same.safetensors"
    option = "--save-style-to" if command.startswith("apply") else "-o"
    with writer_lock(out):  # the first writer, still running
        result = CliRunner().invoke(app, [*commands[command], option, str(out)])
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1 and "another run" in result.output and "is writing it" in result.output
    assert "Traceback" not in result.output
    assert not out.exists() and not out.with_suffix(".log.jsonl").exists()  # refused before its work
    assert not (tmp_path / "out.png").exists()
