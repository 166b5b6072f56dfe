"""Regression tests for a hostile bad-input sweep (issue 13): full disks, concurrent runs,
files left by killed runs. Each test failed on the code before the fix."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_photo
from stylize.io import atomic
from stylize.apply import batch
from stylize.apply.plan import plan
from stylize.model import checkpoint
from stylize.errors import StylizeError
from stylize.io.images import read_image
from stylize.io.encode import write_image

ROOT = Path(__file__).resolve().parent.parent


def noisy_photo(path: Path, size: int = 256, seed: int = 0) -> Path:
    """A photo that compresses badly, so its stylized JPEG is tens of KB."""
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
    return path


def run_with_file_size_limit(limit: int, *args: str) -> subprocess.CompletedProcess:
    """``stylize ARGS`` in a process that cannot make a file longer than ``limit`` bytes.

    RLIMIT_FSIZE (with SIGXFSZ ignored) gives exactly what a full disk gives: a short
    ``write()`` at the limit, then errors. It is per process, so it cannot touch pytest.
    """
    code = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, resource.RLIM_INFINITY)); "
            "from stylize.cli import main; sys.exit(main(sys.argv[1:]))")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=300)


# --------------------------------------------------------------------------- 1: full disk


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE short writes")
def test_full_disk_fails_the_output_and_a_rerun_writes_it(tiny_model, tmp_path):
    photo = noisy_photo(tmp_path / "photo.png")
    out = tmp_path / "out.jpg"
    args = ["apply", str(photo), "-s", "starry", "-o", str(out), "-m", str(tiny_model), "--backend", "torch"]
    full = run_with_file_size_limit(8192, *args)
    assert full.returncode == 1, full.stderr
    assert "Traceback" not in full.stderr
    errors = [line for line in full.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and str(out) in errors[0], full.stderr
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]
    rerun = run_with_file_size_limit(2**30, *args)
    assert rerun.returncode == 0 and "wrote" in rerun.stderr, rerun.stderr
    read_image(out)


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE short writes")
def test_full_disk_while_saving_a_checkpoint_keeps_the_previous_one(tiny_model, tmp_path):
    model = tmp_path / "model.safetensors"
    model.write_bytes(tiny_model.read_bytes())
    args = ["export", str(tiny_model), "-o", str(tmp_path / "lean.safetensors")]
    full = run_with_file_size_limit(4096, *args)
    assert full.returncode == 1 and "Traceback" not in full.stderr, full.stderr
    assert "cannot write checkpoint" in full.stderr and "lean.safetensors" in full.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_short_writes_are_retried_and_no_progress_is_a_full_disk(tmp_path, monkeypatch):
    real_write = os.write
    monkeypatch.setattr(atomic.os, "write", lambda fd, data: real_write(fd, bytes(data[:7])))
    assert atomic.write_atomically(tmp_path / "a.bin", b"x" * 100)
    assert (tmp_path / "a.bin").read_bytes() == b"x" * 100
    monkeypatch.setattr(atomic.os, "write", lambda fd, data: 0)
    size = r"[\d.]+ (?:[KMG]B|bytes)"
    with pytest.raises(StylizeError, match=rf"b\.png: No space left on device \(needs {size}, {size} free"):
        write_image(tmp_path / "b.png", torch.rand(3, 8, 8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_a_file_shorter_than_its_data_is_never_put_in_place(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "_write_all", lambda fd, data: os.write(fd, data[: len(data) // 2]))
    with pytest.raises(OSError, match="50 of 100 bytes"):
        atomic.write_atomically(tmp_path / "a.bin", b"x" * 100)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- 6: concurrent runs


def test_an_output_another_run_finished_meanwhile_is_kept_and_reported_skipped(tiny_model, tmp_path, monkeypatch):
    from stylize.apply.torch_backend import Stylizer

    make_photo(tmp_path / "in" / "a.png", seed=1)
    make_photo(tmp_path / "in" / "b.png", seed=2)
    stylizer = Stylizer.load(tiny_model, device="cpu")
    tasks = plan([str(tmp_path / "in")], str(tmp_path / "out"), stylizer.choose("starry"))
    real = stylizer.stylize_photo

    def the_other_run_finishes_first(photo, choice, settings):
        (tmp_path / "out").mkdir(exist_ok=True)
        (tmp_path / "out" / "a.png").write_bytes(b"the other run's finished output")
        return real(photo, choice, settings)

    monkeypatch.setattr(stylizer, "stylize_photo", the_other_run_finishes_first)
    summary = batch.run(stylizer, tasks)
    by_name = {Path(r.output).name: r.status for r in summary.results}
    assert by_name == {"a.png": "skipped", "b.png": "ok"}
    assert (tmp_path / "out" / "a.png").read_bytes() == b"the other run's finished output"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]


def test_overwrite_still_replaces(tmp_path):
    dest = tmp_path / "out.png"
    dest.write_bytes(b"old")
    assert not write_image(dest, torch.rand(3, 8, 8), overwrite=False)
    assert dest.read_bytes() == b"old"
    assert write_image(dest, torch.rand(3, 8, 8), overwrite=True)
    read_image(dest)


def test_without_hard_links_an_existing_file_is_still_kept(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(atomic.os, "link", no_links)
    assert atomic.write_atomically(tmp_path / "new.bin", b"new", replace=False)
    assert not atomic.write_atomically(tmp_path / "new.bin", b"newer", replace=False)
    assert (tmp_path / "new.bin").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.bin"]


# --------------------------------------------------------------------------- 12: temp files of killed runs


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_temp_files_of_killed_runs_are_removed_by_the_next_write(tiny_model, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    hour_ago = time.time() - 2 * atomic.STALE_AFTER_S
    dead = out / f".a-starry_night.png.stylize-{_dead_pid()}.0123abcd.tmp"
    old = out / f".b.png.stylize-{os.getppid()}.89abcdef.tmp"  # a live id, but over an hour old: reused
    live = out / f".c.png.stylize-{os.getppid()}.deadbeef.tmp"  # a run still writing
    # What safetensors' save_file (and Rust's tempfile) name temporary files: kept, even one that
    # holds the start of a stylize checkpoint (another program may have made it).
    safetensors_temp = out / ".tmpAb3dE9"
    foreign = out / ".tmpZz9yX8"
    # Other programs' temporary files, in the form stylize's names had before they carried a
    # marker: not provably ours, so kept however old and whoever's process id they name.
    others = [out / f".notes.txt.{_dead_pid()}.deadbeef.tmp", out / ".draft.0badc0de.tmp",
              out / ".notes.txt.4000000.deadbeef.tmp"]
    for path in (dead, old, live, safetensors_temp, foreign, *others):
        path.write_bytes(b"partial")
    safetensors_temp.write_bytes(tiny_model.read_bytes()[:4096])
    for path in (old, safetensors_temp, foreign, *others):
        os.utime(path, (hour_ago, hour_ago))
    make_photo(tmp_path / "a.png")
    from stylize.apply.torch_backend import Stylizer

    stylizer = Stylizer.load(tiny_model, device="cpu")
    batch.run(stylizer, plan([str(tmp_path / "a.png")], str(out), stylizer.choose("starry")))
    assert sorted(p.name for p in out.iterdir()) == sorted(["a.png", live.name, safetensors_temp.name,
                                                            foreign.name, *(p.name for p in others)])


def test_a_killed_checkpoint_write_is_cleaned_by_the_next_save(tiny_model, tmp_path):
    stale = tmp_path / f".m.safetensors.stylize-{_dead_pid()}.0123abcd.tmp"
    stale.write_bytes(tiny_model.read_bytes()[:1000])
    checkpoint.save(tmp_path / "m.safetensors", checkpoint.load(tiny_model))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


# --------------------------------------------------------------------------- 2, 3, 9: crafted checkpoints


def crafted(source: Path, path: Path, *, meta: dict | None = None, styles: list | None = None,
            tensors: dict | None = None, drop: tuple[str, ...] = (), config: dict | None = None) -> Path:
    """A copy of checkpoint ``source`` with metadata fields and tensors replaced."""
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(source), framework="pt") as handle:
        header = json.loads(handle.metadata()["stylize"])
        state = {k: handle.get_tensor(k) for k in handle.keys()}
    if styles is not None:
        header["styles"] = styles
    header["config"].update(config or {})
    header.update(meta or {})
    for key in drop:
        header.pop(key, None)
    state.update(tensors or {})
    save_file(state, str(path), metadata={"stylize": json.dumps(header)})
    return path


def cli(*args: str):
    from typer.testing import CliRunner

    from stylize.cli import app

    return CliRunner().invoke(app, list(args))


def one_error_line(result) -> str:
    """The failed command's only output: one ``error:`` line on stderr, no traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def test_a_style_name_that_leaves_the_output_folder_is_refused_on_load(tiny_model, tmp_path):
    bad = crafted(tiny_model, tmp_path / "bad.safetensors", styles=["x/../../../ESCAPED", "b", "c"])
    make_photo(tmp_path / "in" / "p.png")
    (tmp_path / "run" / "out").mkdir(parents=True)
    line = one_error_line(cli("apply", str(tmp_path / "in" / "p.png"), "-s", "all", "-o",
                              str(tmp_path / "run" / "out") + "/", "-m", str(bad)))
    assert "style name" in line and "'/'" in line
    assert not list((tmp_path / "run").rglob("*.png")) and not list(tmp_path.rglob("ESCAPED*"))
    with pytest.raises(StylizeError, match="bad style name"):
        checkpoint.load(bad)


@pytest.mark.parametrize("name", ["a\nerror: all your files are gone", "\x1b[2Jclear", "tab\there", "line\u2028sep"])
def test_control_characters_in_style_names_are_refused_and_printed_escaped(tiny_model, tmp_path, name):
    bad = crafted(tiny_model, tmp_path / "bad.safetensors", styles=[name, "b", "c"])
    line = one_error_line(cli("styles", "-m", str(bad)))
    assert "control characters" in line
    assert "\x1b" not in line and "\u2028" not in line and "\t" not in line


def test_printed_file_names_are_escaped(tiny_model, tmp_path):
    folder = tmp_path / "in"
    make_photo(folder / "p.png")
    (folder / "evil\x1b[2J.png").write_bytes(b"not an image")
    result = cli("apply", str(folder), "-s", "starry", "-o", str(tmp_path / "out"), "-m", str(tiny_model))
    assert result.exit_code == 1 and "\x1b" not in result.output
    assert "evil\\x1b[2J.png" in result.stderr


@pytest.mark.parametrize("change, words", [
    (dict(config={"channels": [8, 16]}), "channels"),
    (dict(config={"channels": [8, -16, 32]}), "channels"),
    (dict(config={"channels": [60000, 60000, 60000]}), "shape"),  # ~1 TB if the network were built
    (dict(config={"channels": [10**30, 1, 1]}), "channels"),
    (dict(config={"n_residual": "1"}), "n_residual"),
    (dict(config={"n_styles": 2}), "metadata names 3 styles"),
    (dict(config={"separable": "yes"}), "separable"),
    (dict(config={"separable": 1}), "separable"),
    (dict(config={"upsample": "bicubic"}), "upsample"),
    (dict(config={"outer_kernel": 4}), "outer_kernel"),
    (dict(config={"outer_kernel": 9.0}), "outer_kernel"),
    (dict(config={"full_res": None}), "full_res"),
    (dict(meta={"step": "abc"}), "step"),
    (dict(meta={"step": -1}), "step"),
    (dict(meta={"format_version": "1"}), "format_version"),
    (dict(meta={"training": [1, 2]}), "training"),
    (dict(meta={"loss_network": 7}), "loss_network"),
    (dict(styles="abc"), "style names"),
    (dict(styles=["a", "A", "c"]), "same --style"),
    (dict(styles=["a", "all", "c"]), "reserved"),
    (dict(styles=["a", "", "c"]), "empty"),
    (dict(styles=["a", 5, "c"]), "style names"),
    (dict(meta={"optimizer_param_groups": "x"}), "optimizer_param_groups"),
])
def test_bad_metadata_is_one_line(tiny_model, tmp_path, change, words):
    bad = crafted(tiny_model, tmp_path / "bad.safetensors", **change)
    for args in (["styles", "-m", str(bad)], ["export", str(bad), "-o", str(tmp_path / "x.safetensors")]):
        line = one_error_line(cli(*args))
        assert words in line and "bad.safetensors" in line
    assert not (tmp_path / "x.safetensors").exists()


@pytest.mark.parametrize("tensors, drop, words", [
    ({"train.0.exp_avg": torch.zeros(3)}, ("optimizer_param_groups",), "optimizer_param_groups"),
    ({"train.abc.exp_avg": torch.zeros(3)}, (), "optimizer state name"),
    ({"extra": torch.zeros(3)}, (), "unexpected 'extra'"),
    ({"head.0.weight": torch.zeros(3)}, (), None),
    (None, ("config",), "architecture"),
])
def test_bad_tensors_are_one_line(tiny_model, tmp_path, tensors, drop, words):
    state = dict(tensors or {})
    if "head.0.weight" in state:  # the first tensor, whatever its name: give it a wrong shape
        from safetensors import safe_open

        with safe_open(str(tiny_model), framework="pt") as handle:
            first = sorted(handle.keys())[0]
        state = {first: torch.zeros(3)}
        words = f"'{first}' has shape [3]"
    bad = crafted(tiny_model, tmp_path / "bad.safetensors", tensors=state, drop=drop,
                  meta={"optimizer_param_groups": [{"params": [0]}]} if "train.abc.exp_avg" in state else None)
    line = one_error_line(cli("export", str(bad), "-o", str(tmp_path / "x.safetensors")))
    assert words in line


def test_integer_tensors_are_refused(tiny_model, tmp_path):
    from safetensors import safe_open

    with safe_open(str(tiny_model), framework="pt") as handle:
        key = sorted(handle.keys())[0]
        shape = handle.get_slice(key).get_shape()
    bad = crafted(tiny_model, tmp_path / "bad.safetensors", tensors={key: torch.zeros(shape, dtype=torch.int64)})
    assert "not floating-point" in one_error_line(cli("styles", "-m", str(bad), "--json"))
    assert "not floating-point" in one_error_line(cli("export", str(bad), "-o", str(tmp_path / "x.safetensors")))


@pytest.mark.parametrize("training, words", [
    ({"steps": "abc"}, "steps"),
    ({"batch_size": 0}, "batch_size"),
    ({"lr": -1.0}, "lr"),
    ({"weights": {"style": "x"}}, "style"),
    ({"weights": [1]}, "loss weights"),
])
def test_bad_training_settings_are_one_line(tiny_model, tmp_path, training, words):
    from stylize.train.loop import TrainSettings

    bad = crafted(tiny_model, tmp_path / "bad.safetensors", meta={"training": training})
    with pytest.raises(StylizeError, match=words):
        TrainSettings.from_dict(checkpoint.load(bad).training)


# --------------------------------------------------------------------------- 4, 5: -o never replaces a file unasked


@pytest.mark.parametrize("command", [
    ["remove-style", "{model}", "great_wave"],
    ["rename-style", "{model}", "great_wave", "wave"],
    ["export", "{model}"],
    ["add-style", "{model}", "{painting}", "--content", "{photos}", "--device", "cpu"],
    ["train", "{paintings}", "--content", "{photos}", "--device", "cpu"],
    ["apply", "{photo}", "--style-image", "{painting}", "--save-style-to", "{existing}", "-m", "{model}", "-o",
     "{tmp}/out.png"],
])
def test_an_existing_output_is_refused_without_overwrite(tiny_model, tmp_path, style_dir, photo_dir, command):
    existing = tmp_path / "notes.txt"
    existing.write_text("precious")
    values = {"model": tiny_model, "painting": style_dir / "stripes.png", "paintings": style_dir,
              "photos": photo_dir, "photo": photo_dir / "p0.png", "existing": existing, "tmp": tmp_path}
    args = [part.format(**values) for part in command]
    if "--save-style-to" not in args:
        args += ["-o", str(existing)]
    line = one_error_line(cli(*args))
    assert "notes.txt already exists" in line and "--overwrite" in line
    if command[0] == "train":
        assert "--resume" in line
    assert existing.read_text() == "precious"


def test_train_over_a_longer_run_is_refused_and_export_overwrite_replaces(tiny_model, tmp_path, style_dir,
                                                                           photo_dir):
    run = crafted(tiny_model, tmp_path / "run.safetensors", meta={"step": 41})
    before = run.read_bytes()
    line = one_error_line(cli("train", str(style_dir), "--content", str(photo_dir), "-o", str(run), "--steps", "2"))
    assert "--resume" in line and run.read_bytes() == before
    lean = tmp_path / "lean.safetensors"
    lean.write_text("old")
    result = cli("export", str(tiny_model), "-o", str(lean), "--overwrite")
    assert result.exit_code == 0, result.output
    assert checkpoint.load(lean).styles == checkpoint.load(tiny_model).styles


# --------------------------------------------------------------------------- 7, 8, 10, 11: training stops that keep work

TINY_RUN = dict(batch_size=2, image_size=32, style_size=48, preset="small", workers=0, checkpoint_every=5,
                preview_every=100, log_every=1)


def tiny_settings(**overrides):
    from stylize.train.loop import TrainSettings

    return TrainSettings(**{**TINY_RUN, **overrides})


def test_weights_that_became_infinite_are_never_saved(tmp_path, style_dir, photo_dir, monkeypatch):
    pytest.importorskip("onnx")
    from stylize.train.loop import TrainingDiverged, train

    real_step = torch.optim.Adam.step
    calls = []

    def overflowing_step(self, *args, **kwargs):  # what a huge --lr does on the last step: finite loss, inf weights
        result = real_step(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 10:
            with torch.no_grad():
                self.param_groups[0]["params"][0].mul_(1e38).mul_(1e38)
        return result

    monkeypatch.setattr(torch.optim.Adam, "step", overflowing_step)
    out = tmp_path / "m.safetensors"
    with pytest.raises(TrainingDiverged, match=r"infinite at step 10; .*m\.safetensors holds step 5") as info:
        train(style_dir, photo_dir, out, tiny_settings(steps=10), device="cpu")
    assert "\n" not in str(info.value) and "--resume takes a new --lr" in str(info.value)
    kept = checkpoint.load(out)
    assert kept.step == 5 and all(torch.isfinite(p).all() for p in kept.net.parameters())


def test_a_checkpoint_with_infinite_weights_is_refused(tiny_model, tmp_path):
    from safetensors import safe_open

    with safe_open(str(tiny_model), framework="pt") as handle:
        key = sorted(handle.keys())[0]
        poisoned = handle.get_tensor(key).clone()
    poisoned.view(-1)[0] = float("inf")
    bad = crafted(tiny_model, tmp_path / "bad.safetensors", tensors={key: poisoned})
    make_photo(tmp_path / "p.png")
    line = one_error_line(cli("apply", str(tmp_path / "p.png"), "-s", "starry", "-m", str(bad)))
    assert "NaN or infinite" in line and not (tmp_path / "p-starry_night.png").exists()


def test_resume_takes_a_new_learning_rate(tmp_path, style_dir, photo_dir):
    pytest.importorskip("onnx")
    from stylize.train.loop import train

    out = tmp_path / "m.safetensors"
    train(style_dir, photo_dir, out, tiny_settings(steps=3, lr=1e-2), device="cpu")
    reports = []
    train(style_dir, photo_dir, out, tiny_settings(steps=4), device="cpu", resume=True, resume_lr=1e-4,
          on_step=reports.append)
    assert checkpoint.load(out).training["lr"] == 1e-4
    assert reports[0].lr == pytest.approx(tiny_settings(steps=4, lr=1e-4).lr_at(3))
    result = cli("train", str(style_dir), "--content", str(photo_dir), "-o", str(out), "--resume", "--steps", "5",
                 "--lr", "1e-5", "--workers", "0", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "continuing with the new --lr 1e-05" in result.stderr
    assert checkpoint.load(out).training["lr"] == 1e-5


def test_resume_takes_a_new_precision_and_keeps_the_run_s_own_otherwise(tmp_path, style_dir, photo_dir):
    """Precision is how the machine computes, not what the model is: a run moved to hardware
    with native bf16 (or away from it) continues in the precision asked for, and says so."""
    out = tmp_path / "m.safetensors"
    train_cli = ("train", str(style_dir), "--content", str(photo_dir), "-o", str(out), "--workers", "0",
                 "--device", "cpu", "--image-size", "32", "--style-size", "32", "--batch-size", "1")
    assert cli(*train_cli, "--steps", "2", "--precision", "fp32").exit_code == 0
    result = cli(*train_cli, "--steps", "3", "--resume")
    assert result.exit_code == 0, result.output
    assert "--precision" not in result.stderr and checkpoint.load(out).training["precision"] == "fp32"
    result = cli(*train_cli, "--steps", "4", "--resume", "--precision", "bf16")
    assert result.exit_code == 0, result.output
    assert "continuing with the new --precision bf16" in result.stderr
    assert checkpoint.load(out).training["precision"] == "bf16" and checkpoint.load(out).step == 4


def test_resume_keeps_the_run_s_snapshots_unless_told_otherwise(tmp_path, style_dir, photo_dir):
    """A run resumed with the command it was started with, less its options, still keeps its snapshots."""
    out = tmp_path / "m.safetensors"
    train_cli = ("train", str(style_dir), "--content", str(photo_dir), "-o", str(out), "--workers", "0",
                 "--device", "cpu", "--image-size", "32", "--style-size", "32", "--batch-size", "1")
    assert cli(*train_cli, "--steps", "2", "--snapshot-every", "2").exit_code == 0
    assert cli(*train_cli, "--steps", "4", "--resume").exit_code == 0
    snapshots = tmp_path / "m.snapshots"
    assert sorted(p.name for p in snapshots.iterdir()) == ["step_0000002.safetensors", "step_0000004.safetensors"]
    assert cli(*train_cli, "--steps", "6", "--resume", "--snapshot-every", "0").exit_code == 0
    assert len(list(snapshots.iterdir())) == 2 and checkpoint.load(out).training["snapshot_every"] == 0


def test_a_learning_rate_that_overflows_is_one_line(tmp_path, style_dir, photo_dir):
    pytest.importorskip("onnx")
    from stylize.train.loop import train

    with pytest.raises(StylizeError) as info:
        train(style_dir, photo_dir, tmp_path / "m.safetensors", tiny_settings(steps=3, lr=1e38), device="cpu")
    assert "\n" not in str(info.value)  # the command line refuses --lr above 1: see test_usage_errors_are_one_line


@pytest.mark.parametrize("workers", [0, 2])
def test_an_unreadable_training_photo_is_skipped_with_a_warning(tmp_path, style_dir, photo_dir, workers):
    pytest.importorskip("onnx")
    from stylize.errors import StylizeWarning
    from stylize.train.loop import train

    (photo_dir / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (photo_dir / "p1.png").write_bytes((photo_dir / "p1.png").read_bytes()[:200])
    out = tmp_path / "m.safetensors"
    with pytest.warns(StylizeWarning) as caught:
        result = train(style_dir, photo_dir, out, tiny_settings(steps=8, batch_size=4, workers=workers), device="cpu",
                       preview=photo_dir / "p0.png")
    assert result.step == 8 and checkpoint.load(out).step == 8
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == len(set(messages)) == 2, messages
    assert "broken.jpg cannot be read" in messages[0] and "p1.png cannot be read" in messages[1]


def test_no_readable_training_photo_is_one_line(tmp_path, style_dir):
    pytest.importorskip("onnx")
    from stylize.train.loop import train

    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.jpg").write_bytes(b"not a photo")
    preview = make_photo(tmp_path / "preview.png")  # readable, so that the photos fail in the data loader
    with pytest.raises(StylizeError, match="no content photo can be read") as info:
        train(style_dir, tmp_path / "bad", tmp_path / "m.safetensors", tiny_settings(steps=2, workers=1),
              device="cpu", preview=preview)
    assert "\n" not in str(info.value)


def test_full_disk_during_training_keeps_the_previous_checkpoint(tmp_path, style_dir, photo_dir, monkeypatch):
    pytest.importorskip("onnx")
    from stylize.train.loop import train

    run = tmp_path / "run"
    run.mkdir()
    out = run / "m.safetensors"
    train(style_dir, photo_dir, out, tiny_settings(steps=5), device="cpu")
    before = out.read_bytes()

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "write", full)
    with pytest.raises(StylizeError) as info:
        train(style_dir, photo_dir, out, tiny_settings(steps=10), device="cpu", resume=True)
    message = str(info.value)
    assert "\n" not in message and "cannot write checkpoint" in message and "m.safetensors" in message
    assert re.search(r"No space left on device \(needs [\d.]+ (?:[KMG]B|bytes), [\d.]+ (?:[KMG]B|bytes) free in ", message), message
    assert "holds step 5" in message
    assert out.read_bytes() == before
    assert sorted(p.name for p in run.iterdir()) == ["m.log.jsonl", "m.previews", "m.safetensors"]


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE short writes")
def test_a_file_size_limit_while_training_is_one_line_and_keeps_the_checkpoint(tmp_path, style_dir, photo_dir):
    pytest.importorskip("onnx")
    from stylize.train.loop import train

    out = tmp_path / "m.safetensors"
    train(style_dir, photo_dir, out, tiny_settings(steps=5), device="cpu")
    before = out.read_bytes()
    args = ["train", str(style_dir), "--content", str(photo_dir), "-o", str(out), "--resume", "--steps", "10",
            "--workers", "0", "--device", "cpu"]
    full = run_with_file_size_limit(len(before) // 2, *args)
    assert full.returncode == 1, full.stderr
    lines = [line for line in full.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "cannot write checkpoint" in lines[0] and "holds step 5" in lines[0], full.stderr
    assert "Traceback" not in full.stderr
    assert out.read_bytes() == before


# --------------------------------------------------------------------------- 13: every error is one line


def run_cli(*args: str, env: dict | None = None, input: bytes | None = None) -> subprocess.CompletedProcess:
    """``python -m stylize ARGS`` as a user runs it: the real entry point, not typer's test runner."""
    return subprocess.run([sys.executable, "-m", "stylize", *args], capture_output=True, cwd=ROOT, input=input,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}, timeout=300)


@pytest.mark.parametrize("args, words", [
    (["train", "x", "-c", "y", "--steps", "0"], "--steps"),
    (["apply", "x.jpg", "--strength", "abc"], "--strength"),
    (["apply", "x.jpg", "--no-such-option"], "No such option"),
    (["train", "x", "-c", "y", "--lr", "1e38"], "--lr"),
    (["remove-style"], "Missing argument"),
    (["no-such-command"], "No such command"),
])
def test_usage_errors_are_one_line(args, words):
    done = run_cli(*args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], lines
    assert done.stdout == b""


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(tiny_model, tmp_path):
    photo = make_photo(tmp_path / "p.png")
    # A bug stand-in: the model file is read by torch in a way that fails unexpectedly.
    code = ("import sys, stylize.apply.torch_backend as inference; "
            "inference.Stylizer.stylize_photo = lambda *a, **k: (_ for _ in ()).throw(RuntimeError('boom\\nline 2')); "
            "from stylize.cli import main; sys.exit(main(sys.argv[1:]))")
    args = ["apply", str(photo), "-s", "starry", "-m", str(tiny_model), "-o", str(tmp_path / "o.png"), "--backend",
            "torch"]
    quiet = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT)
    assert quiet.returncode == 1
    assert quiet.stderr.splitlines() == ["error: RuntimeError: boom (--debug or STYLIZE_DEBUG=1 shows where)"], \
        quiet.stderr
    for extra_env, extra_args in (({"STYLIZE_DEBUG": "1"}, []), ({}, ["--debug"])):
        loud = subprocess.run([sys.executable, "-c", code, *extra_args, *args], capture_output=True, text=True,
                              cwd=ROOT, env={**os.environ, **extra_env})
        assert loud.returncode == 1 and "Traceback" in loud.stderr and "boom" in loud.stderr


# --------------------------------------------------------------------------- 15: stdin is bounded


class Zeros:
    """An endless-ish binary stream of zeros that counts what was read from it."""

    def __init__(self, size: int) -> None:
        self.left, self.read_bytes = size, 0

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        self.left -= n
        self.read_bytes += n
        return bytes(n)


def test_stdin_is_read_only_up_to_what_the_pixel_limit_allows():
    from stylize.io.images import max_stream_bytes

    stream = Zeros(64 * 2**20)
    with pytest.raises(StylizeError, match=r"<stdin>: more than \d+ MB.*--max-pixels") as info:
        read_image(stream, max_pixels=1000, name="<stdin>")
    assert "\n" not in str(info.value)
    assert stream.read_bytes <= max_stream_bytes(1000) + 2**20


def test_a_photo_on_stdin_within_the_limit_is_read(tmp_path):
    import io

    data = make_photo(tmp_path / "p.png", (40, 25)).read_bytes()
    assert read_image(io.BytesIO(data), max_pixels=1000).rgb.shape == (3, 25, 40)


def test_stdin_bound_through_the_cli(tiny_model):
    done = run_cli("apply", "-", "-s", "starry", "-m", str(tiny_model), "--max-pixels", "1000", "-o", "x.png",
                   input=bytes(20 * 2**20))
    lines = done.stderr.decode().splitlines()
    assert done.returncode == 1 and len(lines) == 1 and "more than" in lines[0], lines


# --------------------------------------------------------------------------- fuzz: damaged files are one line


def mutations(data: bytes, count: int, seed: int, hot: int = 0) -> list[bytes]:
    """``count`` damaged copies of ``data``: a few flipped bytes (half of them within the first
    ``hot`` bytes, the header, when given), or cut short."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        damaged = bytearray(data)
        if rng.random() < 0.1:
            damaged = damaged[: int(rng.integers(1, len(data)))]
        else:
            for _ in range(int(rng.integers(1, 9))):
                limit = hot if hot and rng.random() < 0.5 else len(damaged)
                damaged[int(rng.integers(0, limit))] ^= int(rng.integers(1, 256))
        out.append(bytes(damaged))
    return out


def assert_one_line_or_fine(load, path: Path) -> str:
    """``load(path)`` succeeds or raises a one-line StylizeError; which, as a word for the tally."""
    try:
        load(path)
    except StylizeError as exc:
        assert "\n" not in str(exc) and str(exc), repr(exc)
        return "refused"
    return "loaded"


def test_fuzzed_checkpoints_load_or_give_one_line(tiny_model, tmp_path):
    import struct

    data = tiny_model.read_bytes()
    header_end = 8 + struct.unpack("<Q", data[:8])[0]
    path = tmp_path / "fuzzed.safetensors"
    tally = {"loaded": 0, "refused": 0}

    def load_and_check(p: Path) -> None:
        ckpt = checkpoint.load(p)
        assert all(torch.isfinite(t).all() for t in ckpt.net.state_dict().values())

    for damaged in mutations(data, 300, seed=13, hot=header_end):
        path.write_bytes(damaged)
        tally[assert_one_line_or_fine(load_and_check, path)] += 1
    assert tally["refused"] >= 100, tally  # most damage to a header is caught, not all of it matters


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_fuzzed_photos_decode_or_give_one_line(tmp_path, fmt):
    import io

    rng = np.random.default_rng(5)
    img = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **({"exif": Image.Exif().tobytes()} if fmt == "JPEG" else {}))
    path = tmp_path / f"fuzzed.{fmt.lower()}"
    tally = {"loaded": 0, "refused": 0}
    for damaged in mutations(buffer.getvalue(), 250, seed=7 if fmt == "JPEG" else 8, hot=200):
        path.write_bytes(damaged)
        tally[assert_one_line_or_fine(read_image, path)] += 1
        tally[assert_one_line_or_fine(lambda p: read_image(io.BytesIO(p.read_bytes()), name="<stdin>"), path)] += 1
    assert tally["refused"] >= 50, tally


def test_fuzzed_files_through_the_cli_are_one_line(tiny_model, tmp_path):
    data = tiny_model.read_bytes()
    model = tmp_path / "m.safetensors"
    for damaged in mutations(data, 20, seed=99, hot=2000):
        model.write_bytes(damaged)
        result = cli("styles", "-m", str(model))
        assert result.exit_code in (0, 1), result.output
        if result.exit_code:
            one_error_line(result)
