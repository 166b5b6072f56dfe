"""Regression tests for a hostile bad-input sweep (issue 13): full disks, concurrent runs,
files left by killed runs. Each test failed on the code before the fix."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_photo
from stylize import atomic, batch, checkpoint
from stylize.errors import StylizeError
from stylize.imageio import read_image, write_image

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
            "from stylize.cli import main; sys.argv = ['stylize', *sys.argv[1:]]; main()")
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
    with pytest.raises(StylizeError, match=r"b\.png: No space left on device \(needs [\d.]+ MB, [\d.]+ MB free"):
        write_image(tmp_path / "b.png", torch.rand(3, 8, 8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_a_file_shorter_than_its_data_is_never_put_in_place(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "_write_all", lambda fd, data: os.write(fd, data[: len(data) // 2]))
    with pytest.raises(OSError, match="50 of 100 bytes"):
        atomic.write_atomically(tmp_path / "a.bin", b"x" * 100)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- 6: concurrent runs


def test_an_output_another_run_finished_meanwhile_is_kept_and_reported_skipped(tiny_model, tmp_path, monkeypatch):
    from stylize.inference import Stylizer

    make_photo(tmp_path / "in" / "a.png", seed=1)
    make_photo(tmp_path / "in" / "b.png", seed=2)
    stylizer = Stylizer.load(tiny_model, device="cpu")
    tasks = batch.plan([str(tmp_path / "in")], str(tmp_path / "out"), stylizer.choose("starry"))
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
    dead = out / f".a-starry_night.png.{_dead_pid()}.0123abcd.tmp"
    old_style = out / ".b.png.89abcdef.tmp"  # before the process id was in the name
    live = out / f".c.png.{os.getppid()}.deadbeef.tmp"  # a run still writing
    safetensors_temp = out / ".tmpAb3dE9"  # what safetensors' save_file left behind
    foreign = out / ".tmpZz9yX8"  # the same pattern, not ours
    for path in (dead, old_style, live, safetensors_temp, foreign):
        path.write_bytes(b"partial")
    safetensors_temp.write_bytes(tiny_model.read_bytes()[:4096])
    for path in (old_style, safetensors_temp, foreign):
        os.utime(path, (hour_ago, hour_ago))
    make_photo(tmp_path / "a.png")
    from stylize.inference import Stylizer

    stylizer = Stylizer.load(tiny_model, device="cpu")
    batch.run(stylizer, batch.plan([str(tmp_path / "a.png")], str(out), stylizer.choose("starry")))
    assert sorted(p.name for p in out.iterdir()) == sorted(["a.png", live.name, foreign.name])


def test_a_killed_checkpoint_write_is_cleaned_by_the_next_save(tiny_model, tmp_path):
    stale = tmp_path / f".m.safetensors.{_dead_pid()}.0123abcd.tmp"
    stale.write_bytes(tiny_model.read_bytes()[:1000])
    checkpoint.save(tmp_path / "m.safetensors", checkpoint.load(tiny_model))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]
