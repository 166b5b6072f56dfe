"""What a hostile sweep of the command line found (issue 28): each case one worded line, the
right exit code, and nothing lost."""

from __future__ import annotations

import errno
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import make_photo, make_tiny_model

from stylize.io import atomic
from stylize.cli import main


# --------------------------------------------------------------------------- names at the 255-byte limit

def test_the_temporary_name_of_a_long_output_name_fits_the_limit(tmp_path: Path) -> None:
    for name in ("a" * 240 + ".png", "é" * 120 + ".png"):  # 244 bytes: the temporary name beside it is longer
        target = tmp_path / name
        assert atomic.write_atomically(target, b"data", replace=False)
        assert target.read_bytes() == b"data"
    assert len(list(tmp_path.iterdir())) == 2


def test_a_long_output_names_leftover_temporary_file_is_still_cleaned(tmp_path: Path) -> None:
    target = tmp_path / ("b" * 250 + ".png")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    left = atomic.temp_path(target, child.pid)  # what a run killed mid-write leaves
    assert len(left.name.encode()) <= 255
    left.write_bytes(b"partial")
    assert atomic.remove_stale_temps(tmp_path) == [left]


# --------------------------------------------------------------------------- full disk in readable units

@pytest.mark.parametrize(("size", "free", "words"), [
    (10_000, 0, "needs 10.0 KB, 0 bytes free"),
    (2_500_000, 1_200_000, "needs 2.5 MB, 1.2 MB free"),
    (3_000_000_000, 512, "needs 3.0 GB, 512 bytes free"),
])
def test_the_full_disk_line_uses_a_readable_unit(tmp_path: Path, monkeypatch, size: int, free: int,
                                                 words: str) -> None:
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda path: type("Usage", (), {"free": free})())
    message = atomic.write_failure(OSError(errno.ENOSPC, "No space left on device"), tmp_path / "x.png", size)
    assert words in message


def test_a_derived_name_over_255_bytes_is_refused_in_one_worded_line(tiny_model: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    photo = make_photo(tmp_path / ("p" * 245 + ".png"))  # 249 bytes; with -starry_night it is 262
    assert main(["apply", str(photo), "-m", str(tiny_model), "-s", "starry"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: ") and "longer than the 255 bytes a file name can have" in line


def test_a_250_character_style_name_is_written_or_refused_in_one_line(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    model = make_tiny_model(tmp_path / "m.safetensors", ["s" * 250, "wave"])
    photo = make_photo(tmp_path / "p.png")
    code = main(["apply", str(photo), "-m", str(model), "-s", "s" * 250])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert (code, len(errors)) in ((0, 0), (1, 1)) and "Traceback" not in err, err
    assert code == 0 or "255 bytes" in errors[0] or "style name" in errors[0]


def test_a_folder_holding_a_255_byte_name_is_written_and_the_rerun_skips_it(tiny_model: Path, tmp_path: Path,
                                                                           capsys) -> None:
    folder = tmp_path / "in"
    make_photo(folder / ("a" * 251 + ".png"))
    make_photo(folder / "b.png", seed=1)
    out = tmp_path / "out"
    args = ["apply", str(folder), "-o", str(out), "-m", str(tiny_model), "-s", "starry"]
    assert main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(["a" * 251 + ".png", "b.png"])
    assert main(args) == 0
    assert "0 written, 2 skipped" in capsys.readouterr().err


# --------------------------------------------------------------------------- one-line errors

def test_a_symlink_loop_as_input_is_one_line(tiny_model: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    loop = tmp_path / "loop.jpg"
    loop.symlink_to(loop)
    assert main(["apply", str(loop), "-m", str(tiny_model), "-s", "starry"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: ") and "symbolic link loop" in line and "RuntimeError" not in line


@pytest.mark.parametrize("slash", ["", "/"])
def test_output_folder_equal_to_the_input_folder_is_refused_for_that_reason(tiny_model: Path, tmp_path: Path,
                                                                           capsys, slash: str) -> None:
    folder = tmp_path / "photos"
    make_photo(folder / "a.png")
    assert main(["apply", str(folder), "-o", str(folder) + slash, "-m", str(tiny_model), "-s", "starry"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert "is the input folder" in line and "no images found" not in line
    assert [p.name for p in folder.iterdir()] == ["a.png"]


# --------------------------------------------------------------------------- a closed stdout

class ShortWrites(io.RawIOBase):
    """A raw stream (as stdout is) that takes at most ``step`` bytes a call, then, past
    ``limit`` bytes, fails as a pipe whose reader has gone."""

    def __init__(self, step: int, limit: int | None = None) -> None:
        self.data, self.step, self.limit = bytearray(), step, limit

    def writable(self) -> bool:
        return True

    def write(self, chunk) -> int:
        if self.limit is not None and len(self.data) >= self.limit:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")
        taken = bytes(chunk[:self.step])
        self.data += taken
        return len(taken)


def test_short_writes_to_a_stream_are_continued_and_a_closed_reader_is_an_error() -> None:
    import torch

    from stylize.errors import StylizeError
    from stylize.io.encode import write_image_to

    rgb = torch.rand(3, 64, 64)
    whole = ShortWrites(step=1000)
    write_image_to(whole, rgb, format="png")
    assert whole.data.startswith(b"\x89PNG") and len(whole.data) > 3000
    with pytest.raises(StylizeError, match="cannot write image to <stdout>: Broken pipe"):
        write_image_to(ShortWrites(step=1000, limit=2000), rgb, format="png")


def test_a_reader_that_closes_the_pipe_early_gets_an_error_not_wrote(tiny_model: Path, tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    photo = tmp_path / "noise.png"  # noise: its stylized PNG is far larger than a pipe holds (64 KB)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(photo)
    code = "import sys; from stylize.cli import main; sys.exit(main(sys.argv[1:]))"
    with open(photo, "rb") as stdin:
        process = subprocess.Popen([sys.executable, "-c", code, "apply", "-", "-m", str(tiny_model), "-s", "starry",
                                    "--format", "png"], stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert process.stdout.read(10).startswith(b"\x89PNG")
        process.stdout.close()  # as `| head -c 10` does
        err = process.stderr.read().decode()
        assert process.wait(timeout=300) in (1, 141), err
    assert "wrote" not in err and len(err.strip().splitlines()) <= 1, err


# --------------------------------------------------------------------------- small ones

def test_styles_refuses_a_checkpoint_with_nan_weights(tiny_model: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import torch
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    with safe_open(str(tiny_model), framework="pt") as handle:
        metadata = handle.metadata()
    state = load_file(str(tiny_model))
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = torch.full_like(state[name], float("nan"))
    broken = tmp_path / "nan.safetensors"
    save_file(state, str(broken), metadata=metadata)
    assert main(["styles", "-m", str(broken)]) == 1
    assert "NaN" in capsys.readouterr().err


def test_info_flags_a_default_model_that_does_not_exist(tmp_path: Path, monkeypatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "gone.safetensors"
    monkeypatch.setenv("STYLIZE_MODEL", str(missing))
    assert main(["info"]) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("default model:")]
    assert str(missing) in line and "does not exist" in line


# --------------------------------------------------------------------------- evaluate and sheet bounds

def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.mark.parametrize("where", ["output", "input", "model", "sheet"])
def test_a_name_over_the_systems_limit_is_said_as_such(tiny_model: Path, tmp_path: Path, capsys, where: str) -> None:
    """Not as an unexpected error (the wording of a bug): the path and the system's reason."""
    photo, long = make_photo(tmp_path / "p.png"), str(tmp_path / ("x" * 300))
    args = {"output": ["apply", str(photo), "-m", str(tiny_model), "-s", "wave", "-o", long + ".png"],
            "input": ["apply", long + ".png", "-m", str(tiny_model), "-s", "wave", "-o", str(tmp_path / "o.png")],
            "model": ["styles", "-m", long + ".safetensors"],
            "sheet": ["sheet", str(photo), "-m", str(tiny_model), "-o", long + ".png"]}[where]
    assert main(args) == 1
    line = one_error_line(capsys)
    assert line.startswith(f"error: {long}") and line.endswith(os.strerror(errno.ENAMETOOLONG)), line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png"]


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_sheet_of_a_tiny_photo_is_one_line(tiny_model: Path, tmp_path: Path, capsys, backend: str) -> None:
    from PIL import Image

    Image.new("RGB", (3, 3), "red").save(tmp_path / "tiny.png")
    args = ["sheet", str(tmp_path / "tiny.png"), "-o", str(tmp_path / "s.png"), "-m", str(tiny_model),
            "--backend", backend, "--device", "cpu"]
    assert main(args) == 1
    assert "3x3 px" in one_error_line(capsys)
    assert not (tmp_path / "s.png").exists()


@pytest.mark.parametrize("option", [["--columns", "1000000000"], ["--cell", "1000000"], ["--columns", "0"]])
def test_sheet_bounds_columns_and_cell_as_usage_errors(tiny_model: Path, tmp_path: Path, capsys,
                                                       option: list[str]) -> None:
    photo = make_photo(tmp_path / "p.png")
    assert main(["sheet", str(photo), "-o", str(tmp_path / "s.png"), "-m", str(tiny_model), *option]) == 2
    assert option[0] in one_error_line(capsys)


def test_evaluate_refuses_paintings_that_do_not_match_the_models_styles(tmp_path: Path, style_dir: Path,
                                                                        photo_dir: Path, capsys) -> None:
    model = make_tiny_model(tmp_path / "m.safetensors", ["stripes", "zigzag"])  # paintings: stripes, waves
    assert main(["evaluate", "-m", str(model), "--styles", str(style_dir), "--photos", str(photo_dir),
                 "--device", "cpu"]) == 1
    line = one_error_line(capsys)
    assert "not styles of the model: waves" in line


@pytest.mark.parametrize("iterations", ["1e20", "100000000000000000000", "0", "50,x"])
def test_evaluate_bounds_the_iterations(tiny_model: Path, style_dir: Path, photo_dir: Path, capsys,
                                        iterations: str) -> None:
    assert main(["evaluate", "-m", str(tiny_model), "--styles", str(style_dir), "--photos", str(photo_dir),
                 "--iterations", iterations, "--device", "cpu"]) == 2
    assert "--iterations" in one_error_line(capsys)


class NeverRenders:
    """A stylizer of ``n`` styles that fails the test if asked to render."""

    def __init__(self, n: int) -> None:
        from stylize.model.styles import choose

        self.choices = choose("all", [f"style{i}" for i in range(n)])

    def choose(self, style: str) -> list:
        return self.choices

    def stylize_photo(self, *args: object) -> None:
        raise AssertionError("rendered before checking the sheet's size")


def test_a_sheet_too_large_to_hold_is_refused_before_rendering() -> None:
    import numpy as np

    from stylize.errors import StylizeError
    from stylize.io.images import Photo
    from stylize.apply.sheet import style_sheet

    photo = Photo(np.zeros((3, 2048, 2048), np.float32))
    with pytest.raises(StylizeError, match=r"--cell 2048 .* Mpx"):
        style_sheet(NeverRenders(22), photo, cell=2048)
    with pytest.raises(StylizeError, match="Mpx"):
        style_sheet(NeverRenders(22), photo, cell=4096, columns=100)


# --------------------------------------------------------------------------- training

TINY = dict(steps=2, batch_size=2, image_size=32, style_size=32, preset="small", checkpoint_every=1,
            preview_every=1, workers=0, precision="fp32")


def test_an_unreadable_photo_that_sorts_first_is_skipped_and_the_first_readable_one_previews(
        tmp_path: Path, style_dir: Path, photo_dir: Path) -> None:
    pytest.importorskip("onnx")
    from stylize.errors import StylizeWarning
    from stylize.config import TrainSettings
    from stylize.train.loop import train

    (photo_dir / "0000-broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = tmp_path / "m.safetensors"
    with pytest.warns(StylizeWarning, match="0000-broken.jpg cannot be read"):
        result = train(style_dir, photo_dir, out, TrainSettings(**TINY), device="cpu")
    assert result.step == 2
    assert (tmp_path / "m.previews" / "step_0000002.jpg").is_file()


@pytest.mark.parametrize("failure", ["folder", "full disk"])
def test_a_preview_that_cannot_be_written_says_which_step_is_saved_and_how_to_resume(
        tmp_path: Path, style_dir: Path, photo_dir: Path, monkeypatch, failure: str) -> None:
    pytest.importorskip("onnx")
    from stylize.train import previews
    from stylize.errors import StylizeError
    from stylize.config import TrainSettings
    from stylize.train.loop import train

    out = tmp_path / "m.safetensors"
    if failure == "folder":
        (tmp_path / "m.previews").write_text("a file where the previews' folder goes")
    else:
        def full(path: Path, *args: object, **kwargs: object) -> None:
            raise StylizeError(f"cannot write {path}: No space left on device (needs 20.0 KB, 0 bytes free)")

        monkeypatch.setattr(previews, "write_image", full)
    with pytest.raises(StylizeError) as info:
        train(style_dir, photo_dir, out, TrainSettings(**TINY), device="cpu")
    message = str(info.value)
    assert "preview" in message and "holds step 1" in message and "--resume" in message, message


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_second_train_into_the_same_output_is_refused_while_the_first_runs(
        tmp_path: Path, style_dir: Path, photo_dir: Path) -> None:
    pytest.importorskip("onnx")
    from stylize.errors import StylizeError
    from stylize.config import TrainSettings
    from stylize.train.loop import train

    out = tmp_path / "same.safetensors"
    lock = tmp_path / ".same.safetensors.lock"
    lock.write_text(f"{os.getppid()}\n")  # a run that is still going (a live process)
    with pytest.raises(StylizeError, match="another run .* is writing it"):
        train(style_dir, photo_dir, out, TrainSettings(**TINY), device="cpu")
    assert not out.exists() and lock.read_text() == f"{os.getppid()}\n"

    lock.write_text(f"{dead_pid()}\n")  # a run that was killed: its lock is stale
    assert train(style_dir, photo_dir, out, TrainSettings(**TINY), device="cpu").step == 2
    assert not lock.exists()  # removed at the end


def test_two_train_commands_started_together_one_is_refused(tmp_path: Path, style_dir: Path,
                                                            photo_dir: Path) -> None:
    pytest.importorskip("onnx")
    out = tmp_path / "same.safetensors"
    code = "import sys; from stylize.cli import main; sys.exit(main(sys.argv[1:]))"
    args = [sys.executable, "-c", code, "train", str(style_dir), "-c", str(photo_dir), "-o", str(out), "--steps", "3",
            "--batch-size", "2", "--image-size", "32", "--style-size", "32", "--preset", "small", "--workers", "0",
            "--device", "cpu", "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = [subprocess.Popen(args, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outcomes = sorted((run.wait(timeout=600), run.stderr.read()) for run in runs)
    assert [code for code, _ in outcomes] == [0, 1], outcomes
    assert "another run" in outcomes[1][1] or "already exists" in outcomes[1][1], outcomes


# --------------------------------------------------------------------------- the learned-style cache

def test_a_planted_learned_style_cache_entry_of_saturating_values_is_not_used(tiny_model: Path, tmp_path: Path,
                                                                              monkeypatch) -> None:
    import numpy as np

    from stylize.io import style_cache
    from stylize.model import checkpoint
    from stylize.train import finetune

    monkeypatch.setenv("STYLIZE_CACHE_DIR", str(tmp_path))
    source = checkpoint.load(tiny_model)
    weights = {key: tensor.numpy() for key, tensor in source.net.state_dict().items()}
    honest = {key: rows[:1].copy() for key, rows in weights.items() if style_cache.is_row_key(key)}  # a real style
    painting = torch_full_like(torch.zeros(3, 32, 32), 0.5) + 0.4 * torch.rand(3, 32, 32)
    style_cache.write_rows("k", honest)
    assert finetune._cached_style(style_cache.read_rows("k", weights), source, "x", painting) is not None
    style_cache.write_rows("k", {key: np.full_like(row, 1e4) for key, row in honest.items()})  # finite, right shapes
    assert style_cache.read_rows("k", weights) is None
    style_cache.write_rows("other", honest)  # an entry under another key is not this key's
    style_cache.entry("other").rename(style_cache.entry("k"))
    assert style_cache.read_rows("k", weights) is None


def torch_full_like(row, value: float):
    import torch

    return torch.full_like(row, value)
