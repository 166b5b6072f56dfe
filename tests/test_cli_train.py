"""`stylize train` and `stylize styles` through the real CLI."""

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from conftest import ctrl_c, start_command
from stylize.model import checkpoint
from stylize.cli import app

pytest.importorskip("onnx")
runner = CliRunner()
TINY = ["--steps", "3", "--batch-size", "2", "--image-size", "32", "--style-size", "48", "--preset", "small",
        "--workers", "0", "--device", "cpu"]


def test_train_then_styles(tmp_path, style_dir, photo_dir):
    out = tmp_path / "m.safetensors"
    result = runner.invoke(app, ["train", str(style_dir), "--content", str(photo_dir), "-o", str(out), *TINY])
    assert result.exit_code == 0, result.output
    assert f"saved {out} (step 3)" in result.output
    assert checkpoint.load(out).styles == ["stripes", "waves"]
    listed = runner.invoke(app, ["styles", "--model", str(out)])
    assert listed.exit_code == 0 and "2 styles" in listed.output and "waves" in listed.output


@pytest.mark.parametrize("args, message", [
    (["--content", "{tmp}/nope"], "content folder"),
    (["--preset", "huge"], "unknown preset"),
    (["--device", "cuda"], None),
])
def test_train_errors_are_one_line(tmp_path, style_dir, photo_dir, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    base = ["train", str(style_dir), "--content", str(photo_dir), "-o", str(tmp_path / "m.safetensors"), *TINY]
    result = runner.invoke(app, base + args)
    if message is None:  # --device cuda is fine where a GPU exists
        pytest.importorskip("torch").cuda.is_available() and pytest.skip("a GPU is present")
        message = "no CUDA GPU"
    assert result.exit_code == 1
    assert message in result.output and result.output.count("\n") == 1
    assert "Traceback" not in result.output


def test_styles_on_a_bad_file(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"junk" * 10)
    result = runner.invoke(app, ["styles", "--model", str(bad)])
    assert result.exit_code == 1 and "error:" in result.output and "Traceback" not in result.output


def test_python_dash_m_help():
    done = subprocess.run([sys.executable, "-m", "stylize", "train", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--content" in done.stdout and "--resume" in done.stdout


def test_train_time_limit_says_how_to_continue(tmp_path, style_dir, photo_dir):
    out = tmp_path / "m.safetensors"
    result = CliRunner().invoke(app, ["train", str(style_dir), "-c", str(photo_dir), "-o", str(out), "--steps", "50",
                                      "--batch-size", "2", "--image-size", "32", "--style-size", "48",
                                      "--preset", "small", "--workers", "0", "--time-limit", "0"])
    assert result.exit_code == 0, result.output
    assert "time limit reached at step 1" in result.output and "--resume" in result.output


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is set only on Linux")
def test_default_workers_fit_the_cores(tmp_path, style_dir, photo_dir):
    """On one core the default DataLoader workers are one: torch warns about more, and they would only wait."""
    out = tmp_path / "m.safetensors"
    args = [a for a in TINY if a not in ("--workers", "0")]
    done = subprocess.run([sys.executable, "-m", "stylize", "train", str(style_dir), "-c", str(photo_dir), "-o",
                           str(out), *args], capture_output=True, text=True, preexec_fn=lambda: os.sched_setaffinity(0, {0}))
    assert done.returncode == 0, done.stderr
    assert "worker" not in done.stderr.lower(), done.stderr
    assert checkpoint.read_metadata(out)["training"]["workers"] == 1


def test_option_defaults_are_the_settings_defaults():
    """Every option named like a setting starts from that setting's default (one place for each)."""
    import typer.main

    from stylize.config import ApplySettings
    from stylize.config import BatchOptions, LossWeights, TrainSettings

    sources = {"train": [TrainSettings(), LossWeights()], "apply": [BatchOptions(), ApplySettings()]}
    aliases = {"content_weight": "content", "style_weight": "style", "tv_weight": "tv"}
    group = typer.main.get_command(app)
    for command, settings in sources.items():
        checked = 0
        for param in group.commands[command].params:
            field = aliases.get(param.name, param.name)
            for source in settings:
                if hasattr(source, field) and param.default is not None:
                    assert param.default == getattr(source, field), (command, param.name)
                    checked += 1
        assert checked >= (5 if command == "apply" else 14), (command, checked)


def test_command_line_loads_without_torch():
    """--help and --version stay fast: the defaults come from torch-free stylize.config."""
    code = "import sys, stylize.cli; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def start_train(out, style_dir, photo_dir) -> subprocess.Popen:
    return start_command(["train", str(style_dir), "--content", str(photo_dir), "-o", str(out), *TINY[2:],
                          "--steps", "100000", "--checkpoint-every", "100000", "--precision", "fp32"])


def test_ctrl_c_between_steps_exits_130_with_the_steps_saved(tmp_path, style_dir, photo_dir):
    """SIGINT, as a terminal's Ctrl-C sends it, ends `stylize train` with 130 and no traceback."""
    import time

    out = tmp_path / "m.safetensors"
    proc = start_train(out, style_dir, photo_dir)
    log = out.with_suffix(".log.jsonl")
    deadline = time.monotonic() + 600
    while not (log.exists() and log.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.2)
    stderr = ctrl_c(proc)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr, stderr
    assert checkpoint.load(out).step >= 1


@pytest.mark.parametrize("delay", [0.2, 0.5, 1.0, 2.0])
def test_ctrl_c_during_start_up_exits_130_in_one_line(tmp_path, style_dir, photo_dir, delay):
    """Ctrl-C in the first seconds (the CLI and torch still importing; torch clears a
    KeyboardInterrupt raised while it imports numpy) ends the run: 130, one line saying so (after
    a step's progress line, where a fast machine got that far), nothing left.

    Python's own start-up (about the first 50 ms, before ``stylize.__main__.main`` runs) is out
    of reach, so the earliest delay here is 0.2 s.
    """
    import time

    out = tmp_path / "run" / "m.safetensors"
    out.parent.mkdir()
    proc = start_train(out, style_dir, photo_dir)
    time.sleep(delay)
    stderr = ctrl_c(proc)
    assert proc.returncode == 130, stderr
    *progress, last = stderr.strip().splitlines()
    assert last.startswith("interrupted") and all(line.startswith("train: ") for line in progress), stderr
    left = sorted(path.name for path in out.parent.iterdir())
    assert not [name for name in left if name.endswith((".lock", ".tmp"))], left
    if left:  # a fast machine reached the loop (and may have shown a step): the steps done are saved
        assert checkpoint.load(out).step >= 0 and "continue with --resume" in last, left
