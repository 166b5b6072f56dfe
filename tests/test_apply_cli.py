"""`stylize apply` and `stylize styles` through the real command line."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms
from typer.testing import CliRunner

from conftest import TINY_STYLES, make_photo
from stylize.cli import main
from stylize.cli import app
from stylize.config import BatchOptions

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent


def apply(model: Path, *args: str, input: bytes | None = None, code: int = 0):
    """Run `stylize apply ... -m model` and check the exit code and that no traceback shows."""
    result = runner.invoke(app, ["apply", *args, "-m", str(model)], input=input)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result


def error_of(result) -> str:
    """The one `error:` line of a failed command."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.output
    return lines[0]


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img).astype(np.int16)


def json_lines(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    return make_photo(tmp_path / "photo.jpg", (48, 40), seed=1)


@pytest.fixture
def album(tmp_path: Path) -> Path:
    """A folder tree with a photo of every input format, a hidden file and a non-image."""
    root = tmp_path / "trip"
    for i, name in enumerate(["a.jpg", "b.png", "day2/c.webp", "day2/d.bmp", "day2/deep/e.tiff"]):
        make_photo(root / name, (40 + 8 * i, 32), seed=i)
    (root / ".hidden.jpg").write_bytes(b"not an image")
    (root / "notes.txt").write_text("not a photo")
    return root


# --------------------------------------------------------------------------- naming


def test_single_file_defaults_to_a_sibling_with_the_style_suffix(tiny_model, photo):
    result = apply(tiny_model, str(photo), "--style", "starry")
    out = photo.with_name("photo-starry_night.jpg")
    assert result.stderr.strip() == f"wrote {out}"
    with Image.open(out) as img:
        assert img.format == "JPEG" and img.size == (48, 40)


def test_output_file_output_folder_and_all_styles(tiny_model, photo, tmp_path):
    apply(tiny_model, str(photo), "-s", "wave", "-o", str(tmp_path / "out.png"))
    assert Image.open(tmp_path / "out.png").format == "PNG"
    apply(tiny_model, str(photo), "-s", "wave", "-o", str(tmp_path / "into") + "/")
    assert (tmp_path / "into" / "photo.jpg").is_file()
    apply(tiny_model, str(photo), "-s", "all", "-o", str(tmp_path / "each.webp"))
    assert sorted(p.name for p in tmp_path.glob("each-*")) == [f"each-{s}.webp" for s in sorted(TINY_STYLES)]
    apply(tiny_model, str(photo), "-s", "all")
    assert {p.name for p in photo.parent.glob("photo-*")} == {f"photo-{s}.jpg" for s in TINY_STYLES}


def test_folder_is_mirrored_into_output_folder(tiny_model, album, tmp_path):
    result = apply(tiny_model, str(album), "-o", str(tmp_path / "trip-starry"), "-s", "starry", "--json")
    written = sorted(p.relative_to(tmp_path / "trip-starry").as_posix() for p in (tmp_path / "trip-starry").rglob("*")
                     if p.is_file())
    assert written == ["a.jpg", "b.png", "day2/c.webp", "day2/d.bmp", "day2/deep/e.tiff"]
    for name in written:
        with Image.open(tmp_path / "trip-starry" / name) as out, Image.open(album / name) as src:
            assert out.format == src.format and out.size == src.size
    assert [r["status"] for r in json_lines(result)] == ["ok"] * 5
    assert "5 written, 0 skipped (already there), 0 failed" in result.stderr


def test_folder_without_output_goes_beside_it_one_folder_per_style(tiny_model, album, tmp_path):
    apply(tiny_model, str(album), "-s", "all", "--format", "png")
    for style in TINY_STYLES:
        assert (tmp_path / f"trip-{style}" / "day2" / "deep" / "e.png").is_file()


def test_several_inputs_keep_their_names_under_the_output_folder(tiny_model, album, photo, tmp_path):
    out = tmp_path / "mixed"
    apply(tiny_model, str(photo), str(album / "day2"), "-o", str(out), "-s", "scream")
    assert (out / "photo.jpg").is_file() and (out / "day2" / "deep" / "e.tiff").is_file()


def test_output_folder_inside_the_input_folder_is_not_read_back(tiny_model, album):
    apply(tiny_model, str(album), "-o", str(album / "styled"), "-s", "wave")
    again = apply(tiny_model, str(album), "-o", str(album / "styled"), "-s", "wave", "--json")
    assert [r["status"] for r in json_lines(again)] == ["skipped"] * 5


def test_format_and_quality(tiny_model, photo, tmp_path):
    apply(tiny_model, str(photo), "-s", "wave", "-o", str(tmp_path / "q"), "--format", "webp", "--quality", "10")
    small = (tmp_path / "q" / "photo.webp").stat().st_size
    apply(tiny_model, str(photo), "-s", "wave", "-o", str(tmp_path / "q"), "--format", "webp", "--quality", "100",
          "--overwrite")
    assert (tmp_path / "q" / "photo.webp").stat().st_size > small


# --------------------------------------------------------------------------- never lose an input


def test_output_equal_to_an_input_is_refused(tiny_model, photo, tmp_path):
    before = photo.read_bytes()
    for args in (["-o", str(photo)], ["-o", str(photo.parent) + "/"], ["-o", str(tmp_path / "." / "photo.jpg")]):
        result = apply(tiny_model, str(photo), "-s", "wave", *args, code=1)
        assert error_of(result).startswith(f"error: refusing to write {tmp_path}")
    other = make_photo(tmp_path / "photo-great_wave.jpg", seed=4)  # an input named like another's output
    result = apply(tiny_model, str(photo), str(other), "-s", "wave", code=1)
    assert "refusing to write" in error_of(result) and "it is the input" in error_of(result)
    assert photo.read_bytes() == before


def test_two_inputs_for_one_output_are_refused(tiny_model, tmp_path):
    a = make_photo(tmp_path / "in" / "a.png")
    make_photo(tmp_path / "in" / "a.jpg")
    result = apply(tiny_model, str(a.parent), "-s", "wave", "--format", "png", "-o", str(tmp_path / "o"), code=1)
    assert "would both be written to" in error_of(result)
    assert not (tmp_path / "o").exists()


def test_existing_outputs_are_skipped_unless_overwrite(tiny_model, photo):
    out = photo.with_name("photo-the_scream.jpg")
    out.write_bytes(b"precious")
    result = apply(tiny_model, str(photo), "-s", "scream")
    assert "skipped" in result.stderr and out.read_bytes() == b"precious"
    apply(tiny_model, str(photo), "-s", "scream", "--overwrite")
    assert Image.open(out).size == (48, 40)


def test_interrupted_batch_keeps_complete_outputs_and_resumes(tiny_model, album, tmp_path):
    from stylize.apply import batch
    from stylize.apply.plan import plan
    from stylize.apply.torch_backend import Stylizer

    stylizer = Stylizer.load(tiny_model, device="cpu")
    tasks = plan([str(album)], str(tmp_path / "out"), stylizer.choose("wave"))

    def stop(result):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        batch.run(stylizer, tasks, on_result=stop)
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert 1 <= len(files) < 5 and not [p for p in files if p.name.endswith(".tmp")]
    for path in files:
        Image.open(path).load()  # complete, decodable
    summary = batch.run(stylizer, tasks)
    assert summary.count("skipped") == len(files) and summary.count("ok") == 5 - len(files)


def test_the_first_photo_is_decoded_while_the_model_opens_and_only_once(tiny_model, tmp_path, monkeypatch):
    from stylize.apply import batch, job as jobs
    from stylize.apply.job import ApplyJob, apply as run_job

    photo = make_photo(tmp_path / "a.png", (48, 40))
    reads: list[Path] = []
    started = threading.Event()
    real_read, real_open = batch.read_image, jobs.open_for

    def read(source, **kwargs):
        reads.append(Path(source))
        started.set()
        return real_read(source, **kwargs)

    def open_for(job, hooks):
        assert started.wait(10), "the photo was not being decoded while the model opened"
        return real_open(job, hooks)

    monkeypatch.setattr(batch, "read_image", read)
    monkeypatch.setattr(jobs, "open_for", open_for)
    job = ApplyJob([str(photo)], str(tmp_path / "early.png"), "wave", tiny_model, backend="onnx", device="cpu")
    threads = threading.active_count()
    summary = run_job(job)
    assert summary.count("ok") == 1 and reads == [photo]
    assert threading.active_count() == threads  # no thread left: the command can end its process at once
    monkeypatch.setattr(jobs, "open_for", real_open)
    renderer, _ = real_open(job, jobs.Hooks())
    batch.run(renderer, jobs.plan([str(photo)], str(tmp_path / "late.png"), renderer.choose("wave")))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "early.png")), np.asarray(Image.open(tmp_path / "late.png")))


def test_a_photo_read_early_whose_output_exists_is_dropped_and_the_output_kept(tiny_model, tmp_path):
    photo = make_photo(tmp_path / "a.png")
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    result = apply(tiny_model, str(photo), "-s", "wave", "-o", str(out), "--backend", "onnx", "--device", "cpu")
    assert "skipped" in result.stderr and out.read_bytes() == b"precious"


def test_an_early_photo_is_let_go_when_its_task_is_skipped_or_pytorch_renders(tiny_model, tmp_path):
    from stylize.apply import batch
    from stylize.apply.onnx_backend import OnnxStylizer
    from stylize.apply.plan import plan
    from stylize.apply.torch_backend import Stylizer

    first, second = make_photo(tmp_path / "a.png"), make_photo(tmp_path / "b.png", seed=1)
    for stylizer in (OnnxStylizer.load(tiny_model), Stylizer.load(tiny_model, device="cpu")):
        out = tmp_path / f"out-{type(stylizer).__name__}"
        tasks = plan([str(first), str(second)], str(out), stylizer.choose("wave"))
        kept = tasks[0].outputs[0].destination
        kept.parent.mkdir(exist_ok=True)
        kept.write_bytes(b"precious")
        with batch.EarlyRead(str(first), BatchOptions()) as early:
            summary = batch.run(stylizer, tasks, early=early)
            assert early.take(tasks[0]) is None  # let go during the run, not held to its end
        assert [r.status for r in summary.results] == ["skipped", "ok"] and kept.read_bytes() == b"precious"
        with batch.EarlyRead(str(second), BatchOptions()) as early:
            summary = batch.run(stylizer, plan([str(second)], str(out / "again.png"), stylizer.choose("wave")),
                                early=early)
            assert summary.count("ok") == 1 and early.take(tasks[1]) is None


def test_only_a_regular_photo_file_is_read_early(tmp_path):
    from stylize.apply.batch import EarlyRead
    from stylize.apply.plan import Task

    folder = tmp_path / "photos"
    make_photo(folder / "a.png")
    pipe = tmp_path / "pipe.png"
    os.mkfifo(pipe)
    for source in ("-", str(folder), str(pipe), str(tmp_path / "clip.mp4"), str(tmp_path / "missing.png")):
        with EarlyRead(source, BatchOptions()) as early:
            assert early.take(Task(Path(source), (), "key")) is None, source
    with EarlyRead(str(folder / "a.png"), BatchOptions()) as early:
        assert early.take(Task(folder / "b.png", (), "key")) is None  # another photo: read by the batch
        photo, _ = early.take(Task(folder / "a.png", (), "key")).result()
        assert photo.rgb.shape == (3, 40, 48) and early.take(Task(folder / "a.png", (), "key")) is None


def test_decoding_and_encoding_run_beside_the_network_with_bounded_queues(tiny_model, tmp_path, monkeypatch):
    from stylize.apply import batch
    from stylize.apply.plan import plan
    from stylize.apply.torch_backend import Stylizer

    for i in range(12):
        make_photo(tmp_path / "many" / f"{i:02d}.png", (32, 32), seed=i)
    stylizer = Stylizer.load(tiny_model, device="cpu")
    tasks = plan([str(tmp_path / "many")], str(tmp_path / "out"), stylizer.choose("wave"))
    events: list[tuple[str, str]] = []
    real_read, real_write, real_stylize = batch.read_image, batch.write_image, stylizer.stylize_photo

    def read(*args, **kwargs):
        events.append(("read", threading.current_thread().name))
        return real_read(*args, **kwargs)

    def write(*args, **kwargs):
        events.append(("write", threading.current_thread().name))
        return real_write(*args, **kwargs)

    def render(*args, **kwargs):
        events.append(("render", threading.current_thread().name))
        return real_stylize(*args, **kwargs)

    monkeypatch.setattr(batch, "read_image", read)
    monkeypatch.setattr(batch, "write_image", write)
    monkeypatch.setattr(stylizer, "stylize_photo", render)
    summary = batch.run(stylizer, tasks, options=BatchOptions(workers=2))
    assert summary.count("ok") == 12
    threads = {kind: {name for k, name in events if k == kind} for kind in ("read", "write", "render")}
    assert threads["render"] == {threading.main_thread().name}
    assert all(name.startswith("stylize-io") for name in threads["read"] | threads["write"])
    ahead = 0
    for kind, _ in events:  # reads started but not yet rendered: at most the workers' read-ahead + 1
        ahead += {"read": 1, "render": -1}.get(kind, 0)
        assert ahead <= 3


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "no such file"),
    (lambda p: p.write_bytes(b""), "file is empty (0 bytes)"),
    (lambda p: p.write_text("hello, I am text"), "not a readable image"),
    (lambda p: p.write_bytes(make_photo(p.with_name("ok.jpg"), (64, 64)).read_bytes()[:700]), "truncated or corrupt"),
])
def test_bad_single_input_is_one_clear_line(tiny_model, tmp_path, make, message):
    bad = tmp_path / "bad.jpg"
    make(bad)
    result = apply(tiny_model, str(bad), "-s", "wave", code=1)
    assert error_of(result).startswith(f"error: {bad}: ") and message in error_of(result)
    assert not bad.with_name("bad-great_wave.jpg").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tiny_model, photo):
    photo.chmod(0)
    try:
        result = apply(tiny_model, str(photo), "-s", "wave", code=1)
    finally:
        photo.chmod(0o644)
    assert "permission denied" in error_of(result)


def test_a_corrupt_file_in_a_folder_fails_alone(tiny_model, album, tmp_path):
    (album / "day2" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    result = apply(tiny_model, str(album), "-o", str(tmp_path / "out"), "-s", "wave", "--json", code=1)
    assert len([p for p in (tmp_path / "out").rglob("*") if p.is_file()]) == 5
    statuses = {Path(r["input"]).name: r["status"] for r in json_lines(result)}
    assert statuses.pop("broken.png") == "failed" and set(statuses.values()) == {"ok"}
    assert error_of(result).startswith(f"error: {album / 'day2' / 'broken.png'}: ")
    assert "5 written, 0 skipped (already there), 1 failed" in result.stderr


@pytest.mark.parametrize("args, message, code", [
    (["-s", "monet"], "unknown style 'monet'; this model has: starry_night, great_wave, the_scream", 1),
    (["-s", "great:1,greaT_wave:1"], "appears twice", 1),
    (["-s", "starry:0.5,wave"], "bad style mix 'starry:0.5,wave': expected NAME:WEIGHT", 1),
    (["-s", "starry:x"], "bad weight 'x'", 1),
    ([], "choose a style with --style", 1),
    (["-s", "wave", "--strength", "1.5"], "strength must be between 0 and 1, got 1.5", 2),
    (["-s", "wave", "--strength", "-0.5"], "strength must be between 0 and 1", 2),
    (["-s", "wave", "--quality", "0"], "quality must be between 1 and 100", 2),
    (["-s", "wave", "--format", "gif"], "'gif' is not one of 'jpg', 'jpeg', 'png', 'webp', 'bmp', 'tif', 'tiff'", 2),
    (["-s", "wave", "-o", "{tmp}/out.gif"], "cannot tell the output format from '.gif'", 1),
    (["-s", "wave", "--device", "tpu"], "tpu: choose one of auto, cpu, cuda, mps", 2),
    (["-s", "wave", "--precision", "fp8"], "'fp8' is not one of 'auto', 'fp32', 'bf16', 'fp16'", 2),
    (["-s", "wave", "--max-pixels", "-1"], "max pixels must be 0", 2),
    (["-s", "wave", "--tile-size", "16"], "tile size 16 is too small for this network", 1),
    (["-s", "wave", "--work-size", "4"], "work size must be 0 (full resolution) or at least 8 px, got 4", 2),
    (["-s", "wave", "-o", "{tmp}/photo.jpg/sub/"], "is a file, not a folder", 1),
    (["-s", "all", "-o", "-"], "-o - (stdout) takes one photo in one style", 1),
])
def test_bad_options_are_one_clear_line(tiny_model, photo, tmp_path, capsys, args, message, code):
    """Exit 2 for a bad option value (a usage error), 1 for what only the model or the files tell."""
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(["apply", str(photo), *args, "-m", str(tiny_model)]) == code
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: ") and message in line


def test_ambiguous_prefix_lists_candidates(tmp_path, photo):
    from conftest import make_tiny_model

    model = make_tiny_model(tmp_path / "m.safetensors", ["great_wave", "great_fire", "scream"])
    result = apply(model, str(photo), "-s", "great", code=1)
    assert error_of(result) == ("error: style 'great' is ambiguous: it matches great_wave, great_fire; "
                                "type more of the name")


def test_unwritable_output_folder(tiny_model, photo, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    result = apply(tiny_model, str(photo), "-s", "wave", "-o", str(blocker / "out"), code=1)
    assert error_of(result) == f"error: cannot write into {blocker / 'out'}: {blocker} is a file, not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_output_folder(tiny_model, photo, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    result = apply(tiny_model, str(photo), "-s", "wave", "-o", str(locked / "out"), code=1)
    assert "permission denied" in error_of(result)


def test_no_images_in_folder(tiny_model, tmp_path):
    (tmp_path / "empty").mkdir()
    result = apply(tiny_model, str(tmp_path / "empty"), "-s", "wave", code=1)
    assert "no images found in" in error_of(result)


def test_decompression_bomb_guard_and_max_pixels(tiny_model, photo):
    result = apply(tiny_model, str(photo), "-s", "wave", "--max-pixels", "1000", code=1)
    assert "safety limit (decompression-bomb guard)" in error_of(result)
    apply(tiny_model, str(photo), "-s", "wave", "--max-pixels", "0")


def test_default_model_and_missing_model(tmp_path, photo, tiny_model, monkeypatch):
    monkeypatch.delenv("STYLIZE_MODEL", raising=False)
    monkeypatch.setattr("stylize.io.weights.WEIGHTS_DIR", tmp_path / "none")
    result = runner.invoke(app, ["apply", str(photo), "-s", "wave"])
    assert result.exit_code == 1 and "no --model given and no shipped model" in error_of(result)
    result = runner.invoke(app, ["apply", str(photo), "-s", "wave", "-m", str(tmp_path / "nope.safetensors")])
    assert result.exit_code == 1 and "no such checkpoint" in error_of(result)
    monkeypatch.setenv("STYLIZE_MODEL", str(tiny_model))
    assert runner.invoke(app, ["apply", str(photo), "-s", "wave"]).exit_code == 0


# --------------------------------------------------------------------------- pixels


def test_strength_zero_returns_the_photo(tiny_model, tmp_path):
    src = make_photo(tmp_path / "p.png", seed=3)
    apply(tiny_model, str(src), "-s", "wave", "--strength", "0", "-o", str(tmp_path / "same.png"))
    assert np.array_equal(pixels(tmp_path / "same.png"), pixels(src))


def test_one_hot_mix_equals_the_plain_style(tiny_model, tmp_path):
    src = make_photo(tmp_path / "p.png", seed=3)
    apply(tiny_model, str(src), "-s", "the_scream", "-o", str(tmp_path / "plain.png"))
    apply(tiny_model, str(src), "-s", "scream:1,wave:0", "-o", str(tmp_path / "mix.png"))
    apply(tiny_model, str(src), "-s", "scream:1,wave:1", "-o", str(tmp_path / "half.png"))
    assert np.array_equal(pixels(tmp_path / "plain.png"), pixels(tmp_path / "mix.png"))
    assert not np.array_equal(pixels(tmp_path / "plain.png"), pixels(tmp_path / "half.png"))


def test_preserve_color_keeps_chroma(tiny_model, tmp_path):
    src = make_photo(tmp_path / "p.png", seed=3)
    apply(tiny_model, str(src), "-s", "scream", "--preserve-color", "-o", str(tmp_path / "kept.png"))
    apply(tiny_model, str(src), "-s", "scream", "-o", str(tmp_path / "plain.png"))
    with Image.open(src) as a, Image.open(tmp_path / "kept.png") as b, Image.open(tmp_path / "plain.png") as c:
        chroma = [np.asarray(img.convert("YCbCr"))[..., 1:].astype(float) for img in (a, b, c)]
    assert np.median(np.abs(chroma[1] - chroma[0])) <= 1.0
    assert np.median(np.abs(chroma[2] - chroma[0])) > 3


def test_max_size_and_tiling(tiny_model, tmp_path):
    src = make_photo(tmp_path / "p.png", (184, 136), seed=3)
    apply(tiny_model, str(src), "-s", "wave", "--max-size", "92", "-o", str(tmp_path / "small.png"))
    assert Image.open(tmp_path / "small.png").size == (92, 68)
    apply(tiny_model, str(src), "-s", "wave", "--tile-size", "0", "-o", str(tmp_path / "whole.png"))
    apply(tiny_model, str(src), "-s", "wave", "--tile-size", "160", "-o", str(tmp_path / "tiled.png"))
    error = (pixels(tmp_path / "whole.png") - pixels(tmp_path / "tiled.png")) / 255
    assert 10 * np.log10(1 / np.mean(error ** 2)) > 30


def test_work_size_sets_the_stroke_size_and_keeps_the_photo_size(tiny_model, tmp_path):
    src = make_photo(tmp_path / "p.png", (184, 136), seed=3)
    apply(tiny_model, str(src), "-s", "wave", "--work-size", "0", "-o", str(tmp_path / "native.png"))
    apply(tiny_model, str(src), "-s", "wave", "--work-size", "92", "-o", str(tmp_path / "work.png"))
    assert Image.open(tmp_path / "work.png").size == Image.open(tmp_path / "native.png").size == (184, 136)
    assert np.abs(pixels(tmp_path / "native.png") - pixels(tmp_path / "work.png")).mean() > 2


def test_image_details_survive(tiny_model, tmp_path):
    """EXIF rotation applied; alpha and ICC kept; grey, palette, CMYK and 16-bit inputs work."""
    src = tmp_path / "in"
    src.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise
    Image.new("RGB", (48, 32), (200, 30, 30)).save(src / "rotated.jpg", exif=exif.tobytes())
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    rgba = Image.new("RGBA", (40, 40), (30, 200, 30, 255))
    rgba.putalpha(Image.linear_gradient("L").resize((40, 40)))
    rgba.save(src / "alpha.png", icc_profile=srgb)
    Image.new("L", (40, 40), 90).save(src / "grey.png")
    Image.new("RGB", (40, 40), (10, 90, 200)).quantize(8).save(src / "palette.png")
    Image.new("CMYK", (40, 40), (10, 90, 200, 5)).save(src / "cmyk.jpg")
    Image.fromarray(np.full((40, 40), 40000, np.uint16)).save(src / "deep.png")
    apply(tiny_model, str(src), "-s", "wave", "-o", str(tmp_path / "out"))
    out = tmp_path / "out"
    with Image.open(out / "rotated.jpg") as img:
        assert img.size == (32, 48) and img.getexif().get(0x0112, 1) == 1
    with Image.open(out / "alpha.png") as img:
        assert img.mode == "RGBA" and img.info.get("icc_profile") == srgb
        assert np.array_equal(np.asarray(img.getchannel("A")), np.asarray(rgba.getchannel("A")))
    for name in ("grey.png", "palette.png", "cmyk.jpg", "deep.png"):
        with Image.open(out / name) as img:
            assert img.mode == "RGB" and img.size == (40, 40)


# --------------------------------------------------------------------------- streams and processes


def test_stdin_to_stdout(tiny_model, tmp_path):
    src = make_photo(tmp_path / "p.png", seed=3)
    result = apply(tiny_model, "-", "-s", "wave", input=src.read_bytes())
    with Image.open(io.BytesIO(result.stdout_bytes)) as img:
        assert img.format == "PNG" and img.size == (48, 40)
    apply(tiny_model, "-", "-s", "wave", "--strength", "0", "-o", str(tmp_path / "file.png"), input=src.read_bytes())
    assert np.array_equal(pixels(tmp_path / "file.png"), pixels(src))
    result = apply(tiny_model, str(src), "-s", "wave", "-o", "-", "--format", "jpg", "--json")
    assert result.stdout_bytes[:2] == b"\xff\xd8" and '"status": "ok"' in result.stderr
    result = apply(tiny_model, "-", "-s", "wave", input=b"", code=1)
    assert error_of(result) == "error: <stdin>: input is empty (0 bytes), expected an image"
    result = apply(tiny_model, "-", str(src), "-s", "wave", input=b"", code=1)
    assert "cannot be combined" in error_of(result)


def run_module(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "stylize", *args], input=stdin, capture_output=True, env=env,
                          timeout=300)


def test_python_dash_m_stylize(tiny_model, tmp_path):
    src = make_photo(tmp_path / "p.jpg", seed=3)
    done = run_module("apply", str(src), "--style", "starry", "-m", str(tiny_model))
    assert done.returncode == 0 and done.stderr.decode().strip() == f"wrote {tmp_path / 'p-starry_night.jpg'}"
    piped = run_module("apply", "-", "--style", "scream", "-m", str(tiny_model), stdin=src.read_bytes())
    assert piped.returncode == 0, piped.stderr
    with Image.open(io.BytesIO(piped.stdout)) as img:
        assert img.format == "JPEG" and img.size == (48, 40)
    failed = run_module("apply", str(tmp_path / "missing.jpg"), "--style", "star", "-m", str(tiny_model))
    assert failed.returncode == 1 and b"Traceback" not in failed.stderr
    assert failed.stderr.decode().strip() == f"error: {tmp_path / 'missing.jpg'}: no such file"


# --------------------------------------------------------------------------- stylize styles


def test_styles_command(tiny_model, tmp_path, monkeypatch):
    result = runner.invoke(app, ["styles", "--model", str(tiny_model)])
    assert result.exit_code == 0
    assert "3 styles" in result.stdout and all(f"  {s}" in result.stdout for s in TINY_STYLES)
    meta = json.loads(runner.invoke(app, ["styles", "-m", str(tiny_model), "--json"]).stdout)
    assert meta["styles"] == TINY_STYLES and meta["config"]["channels"] == [8, 16, 32]
    monkeypatch.setenv("STYLIZE_MODEL", str(tiny_model))
    assert "great_wave" in runner.invoke(app, ["styles"]).stdout
    bad = tmp_path / "bad.safetensors"
    bad.write_text("nope")
    result = runner.invoke(app, ["styles", "-m", str(bad)])
    assert result.exit_code == 1 and error_of(result).startswith(f"error: {bad}: ")
    assert "Traceback" not in result.output
