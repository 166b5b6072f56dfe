"""Usage errors exit 2 (as the README promises), and options with a fixed set of values are
choices that ``--help`` lists and shell completion offers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import make_photo
from typer.testing import CliRunner

from stylize.cli import app, main


@pytest.mark.parametrize("extra", [["--device", "foo"], ["--device", "cuda:x"], ["--strength", "2"],
                                   ["--quality", "0"], ["--format", "gif"], ["--backend", "tf"],
                                   ["--precision", "fp8"], ["--smoothing", "1"], ["-q", "-v"]],
                         ids=lambda extra: " ".join(extra))
def test_bad_option_values_exit_2_with_one_line(extra: list[str], tiny_model: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    photo = make_photo(tmp_path / "p.png")
    out = tmp_path / "out.png"
    code = main(["apply", str(photo), "-m", str(tiny_model), "-s", "starry", "-o", str(out), *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert not out.exists()


@pytest.mark.parametrize("command", [["train", "a", "-c", "b"], ["styles"], ["info"]])
def test_quiet_and_verbose_together_is_a_usage_error_in_every_command(command: list[str],
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "-q", "-v"]) == 2
    assert "exclude each other" in capsys.readouterr().err


@pytest.mark.parametrize(("command", "listed"), [
    ("apply", ["auto|torch|onnx", "auto|fp32|bf16|fp16", "jpg|jpeg|png|webp|bmp|tif|tiff", "auto|cpu|cuda|cuda:N|mps"]),
    ("train", ["auto|fp32|bf16|fp16", "auto|cpu|cuda|cuda:N|mps"]),
    ("sheet", ["auto|torch|onnx"]),
])
def test_help_lists_the_choices(command: str, listed: list[str]) -> None:
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0
    for choices in listed:
        assert choices in result.stdout


def complete(words: str) -> list[str]:
    """What bash completion would offer for the last of ``words`` (typer's bash protocol)."""
    result = CliRunner().invoke(app, [], prog_name="stylize",
                                env={"_STYLIZE_COMPLETE": "complete_bash", "COMP_WORDS": words,
                                     "COMP_CWORD": str(len(words.split(" ")) - 1)})
    return result.stdout.split()


@pytest.mark.parametrize(("words", "offered"), [
    ("stylize apply x --backend ", {"auto", "torch", "onnx"}),
    ("stylize apply x --precision ", {"auto", "fp32", "bf16", "fp16"}),
    ("stylize apply x --format w", {"webp"}),
    ("stylize train x --device ", {"auto", "cpu", "cuda", "mps"}),
])
def test_shell_completion_offers_the_choices(words: str, offered: set[str]) -> None:
    assert set(complete(words)) == offered


def test_shell_completion_can_be_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The shell is named, not detected: typer detects it from the parent processes, and a test
    # run started in the background (nohup, CI runners) may have no shell among them.
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    result = CliRunner().invoke(app, ["--show-completion", "bash"], prog_name="stylize",
                                env={"HOME": str(tmp_path), "SHELL": "/bin/bash"})
    assert result.exit_code == 0, result.output
    assert "_STYLIZE_COMPLETE" in result.stdout
    assert "--install-completion" in CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"}).stdout
    assert os.listdir(tmp_path) == []  # showing the script installs nothing
