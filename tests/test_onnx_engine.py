"""`apply` on ONNX Runtime: the same pictures as the PyTorch path, from a process without PyTorch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from conftest import make_photo, make_tiny_model, needs_fifos
from stylize.cli import app
from stylize.errors import StylizeError
from stylize.io.images import read_image
from stylize.io.pixels import as_float
from stylize.apply.torch_backend import Stylizer
from stylize.apply import graphs
from stylize.apply.onnx_backend import OnnxStylizer, onnx_backend_applies, resize_long_side
from stylize.config import AUTO_TILE_ONNX, EDGE_BORDER, ApplySettings
from stylize.apply.tiling import min_tile
from stylize.io.weights import file_sha256

REPO = Path(__file__).resolve().parent.parent
SHIPPED = sorted(p.name for p in (REPO / "weights").glob("*.safetensors"))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((as_float(np.asarray(a)).astype(np.float64) - as_float(np.asarray(b))) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


@pytest.fixture(scope="module")
def engines(tiny_model: Path) -> tuple[OnnxStylizer, Stylizer]:
    return OnnxStylizer.load(tiny_model, threads=1), Stylizer.load(tiny_model, device="cpu")


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    return read_image(make_photo(tmp_path_factory.mktemp("p") / "p.png", (90, 70), seed=4), arrays=True).rgb


@pytest.mark.parametrize("settings", [ApplySettings(), ApplySettings(strength=0.4),
                                      ApplySettings(preserve_color=True), ApplySettings(max_size=50),
                                      ApplySettings(work_size=48)],
                         ids=["plain", "strength", "preserve-color", "max-size", "work-size"])
@pytest.mark.parametrize("style", ["starry", "starry:0.3,scream:0.7"])
def test_onnx_runtime_renders_what_torch_renders(engines, photo, settings, style):
    onnx, reference = engines
    ours = onnx.pixels(onnx.stylize(photo, onnx.choose(style)[0], settings))
    theirs = reference.stylize(reference.pixels(photo), reference.choose(style)[0], settings).numpy()
    assert ours.shape == theirs.shape
    # max_size, work_size: Pillow's and PyTorch's resizers differ slightly.
    assert psnr(ours, theirs) >= (35 if settings.max_size or settings.work_size else 40)


def test_an_8_bit_photo_painted_smaller_is_restored_on_its_8_bit_planes(engines, tmp_path: Path):
    """The 8-bit path (Pillow's integer filters, the detail added in integers) stays within a
    few levels of the float path on the same photo, and keeps detail beyond half the range: a
    one-pixel white line on black is as bright as the float path makes it."""
    onnx, _ = engines
    photo = read_image(make_photo(tmp_path / "p.png", (180, 140), seed=7), arrays=True).rgb
    line = np.zeros_like(photo)
    line[:, 70, :] = 255
    for rgb in (photo, line):
        for settings in (ApplySettings(work_size=64), ApplySettings(work_size=64, preserve_color=True)):
            eight = onnx.stylize(rgb, onnx.choose("starry")[0], settings)
            floats = onnx.stylize(as_float(rgb), onnx.choose("starry")[0], settings)
            assert eight.shape == floats.shape == rgb.shape
            assert eight.dtype == (np.float32 if settings.preserve_color else np.uint8)
            levels = np.abs(as_float(eight) - floats) * 255
            assert levels.max() <= 4.5 and levels.mean() < 1, (levels.max(), levels.mean())
    full_size = onnx.stylize(photo, onnx.choose("starry")[0], ApplySettings(work_size=0))
    assert full_size.dtype == np.float32  # painted at its own size: floats, as the network gives them


def test_tiles_share_the_whole_images_statistics(engines, tmp_path: Path):
    onnx, _ = engines
    big = read_image(make_photo(tmp_path / "wide.png", (200, 70), seed=6), arrays=True).rgb
    choice = onnx.choose("wave")[0]
    whole = onnx.stylize(big, choice, ApplySettings(tile_size=0))
    tiled = onnx.stylize(big, choice, ApplySettings(tile_size=min_tile(onnx.config), stats_size=0))
    assert psnr(tiled, whole) >= 60
    downscaled = onnx.stylize(big, choice, ApplySettings(tile_size=min_tile(onnx.config), stats_size=150))
    assert psnr(downscaled, whole) >= 30


def test_resize_matches_torch_in_size(photo):
    from stylize.io.pixels import resize_long_side as torch_resize

    ours = resize_long_side(as_float(photo), 33)
    theirs = torch_resize(torch.from_numpy(as_float(photo)), 33).numpy()
    assert ours.shape == theirs.shape
    assert psnr(ours, theirs) >= 30


def test_backend_choice():
    assert onnx_backend_applies("auto", "cpu", "auto")
    assert onnx_backend_applies("onnx", "cpu", "fp32")
    assert not onnx_backend_applies("torch", "cpu", "auto")
    assert not onnx_backend_applies("auto", "cuda", "auto")
    assert not onnx_backend_applies("auto", "cpu", "bf16")
    with pytest.raises(StylizeError, match="CPU in fp32"):
        onnx_backend_applies("onnx", "cuda", "auto")
    with pytest.raises(StylizeError, match="choose one of"):
        onnx_backend_applies("tensorrt", "cpu", "auto")


def test_cli_backends_agree_and_keep_alpha(tiny_model: Path, tmp_path: Path):
    source = tmp_path / "a.png"
    rgba = np.asarray(Image.open(make_photo(tmp_path / "rgb.png", (40, 36), seed=5)).convert("RGBA")).copy()
    rgba[..., 3] = np.linspace(0, 255, 40, dtype=np.uint8)[None]
    Image.fromarray(rgba).save(source)
    outputs = {}
    for backend in ("onnx", "torch"):
        out = tmp_path / f"{backend}.png"
        result = CliRunner().invoke(app, ["apply", str(source), "--model", str(tiny_model), "--style", "scream",
                                          "--backend", backend, "-o", str(out)])
        assert result.exit_code == 0, result.output
        outputs[backend] = np.asarray(Image.open(out), np.float32) / 255
    assert outputs["onnx"].shape == (36, 40, 4)
    assert np.array_equal(outputs["onnx"][..., 3], outputs["torch"][..., 3])
    assert psnr(outputs["onnx"][..., :3], outputs["torch"][..., :3]) >= 40


def test_onnx_backend_refuses_what_it_cannot_do(tiny_model: Path, tmp_path: Path):
    photo = make_photo(tmp_path / "p.png")
    result = CliRunner().invoke(app, ["apply", str(photo), "--model", str(tiny_model), "--style", "starry",
                                      "--backend", "onnx", "--precision", "bf16"])
    assert result.exit_code == 1 and "--backend onnx runs on the CPU in fp32" in result.output


def test_a_users_model_gets_its_graph_once_and_then_runs_without_torch(tmp_path: Path):
    model = make_tiny_model(tmp_path / "mine.safetensors", seed=3)
    photo = make_photo(tmp_path / "p.png")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    probe = ("import sys\nfrom stylize.cli import main\ncode = main(sys.argv[1:])\n"
             "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', code)\n")
    runs = []
    for name in ("first.png", "second.png"):
        runs.append(subprocess.run([sys.executable, "-c", probe, "apply", str(photo), "--model", str(model),
                                    "--style", "wave", "--device", "cpu", "-o", str(tmp_path / name)],
                                   capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600))
        assert runs[-1].returncode == 0, runs[-1].stderr
        assert (tmp_path / name).is_file()
    assert f"making the ONNX graph for {model} (once)..." in runs[0].stderr
    assert "making" not in runs[1].stderr and runs[1].stdout.split() == ["NO-TORCH", "0"]
    cached = graphs.cached(file_sha256(model))
    assert cached.is_file() and not graphs.beside(model).exists()  # the cache, never beside the user's file
    meta = OnnxStylizer(cached).metadata
    assert json.loads(meta["config"])["n_residual"] == 1 and meta[graphs.SOURCE_KEY] == file_sha256(model)


@pytest.mark.parametrize("name", SHIPPED, ids=lambda name: name.split(".")[0])
def test_the_shipped_graphs_are_the_shipped_models(name: str, tmp_path: Path):
    """weights/*.onnx travel in the wheel so that apply needs no torch: each must be its checkpoint's."""
    model = REPO / "weights" / name
    graph = graphs.beside(model)
    onnx = OnnxStylizer(graph, threads=2)
    assert onnx.metadata[graphs.SOURCE_KEY] == file_sha256(model), \
        f"{graph} was made from another checkpoint: stylize export -m {model} --onnx {graph} --overwrite"
    assert onnx.metadata[graphs.VERSION_KEY] == str(graphs.GRAPH_VERSION)
    reference = Stylizer.load(model, device="cpu")
    assert onnx.styles == reference.styles
    rgb = read_image(make_photo(tmp_path / "p.png", (96, 72), seed=9), arrays=True).rgb
    for style in ("starry", "wave", "udnie"):
        ours = onnx.stylize(rgb, onnx.choose(style)[0])
        theirs = reference.stylize(reference.pixels(rgb), reference.choose(style)[0]).numpy()
        assert psnr(ours, theirs) >= 40


def test_a_stale_or_broken_graph_beside_a_model_is_passed_over(tmp_path: Path):
    model = make_tiny_model(tmp_path / "m.safetensors", seed=1)
    other = make_tiny_model(tmp_path / "other.safetensors", seed=2)
    reference = OnnxStylizer.load(model)
    photo = read_image(make_photo(tmp_path / "p.png", (40, 32)), arrays=True).rgb
    expected = reference.stylize(photo, reference.choose("wave")[0])
    OnnxStylizer.load(other)
    graphs.beside(model).write_bytes(graphs.cached(file_sha256(other)).read_bytes())  # another model's graph
    again = OnnxStylizer.load(model)
    assert psnr(again.stylize(photo, again.choose("wave")[0]), expected) >= 60
    assert graphs.beside(model).read_bytes() == graphs.cached(file_sha256(other)).read_bytes()  # left alone


@needs_fifos
def test_fifos_in_place_of_graphs_are_passed_over(tmp_path: Path, monkeypatch):
    """A FIFO planted beside a model or in the cache (the graph, its optimized form) would block a
    read for ever: it is no graph, so it is passed over like one that does not open (in a child
    process, so that a blocked read fails the test rather than hangs it)."""
    monkeypatch.setenv("STYLIZE_CACHE_DIR", str(tmp_path / "cache"))
    model = make_tiny_model(tmp_path / "m.safetensors", seed=1)
    photo = make_photo(tmp_path / "p.png", (40, 32))
    first = OnnxStylizer.load(model)
    expected = first.stylize(read_image(photo, arrays=True).rgb, first.choose("wave")[0])
    cached = [graphs.cached(file_sha256(model)), *(tmp_path / "cache" / "onnx" / "optimized").iterdir()]
    assert len(cached) == 2
    for path in cached:
        path.unlink()
    for path in [graphs.beside(model), *cached]:
        os.mkfifo(path)
    code = ("import sys, numpy; from stylize.apply.onnx_backend import OnnxStylizer; "
            "from stylize.io.images import read_image; s = OnnxStylizer.load(sys.argv[1]); "
            "numpy.save(sys.argv[3], s.stylize(read_image(sys.argv[2], arrays=True).rgb, s.choose('wave')[0]))")
    run = subprocess.run([sys.executable, "-c", code, str(model), str(photo), str(tmp_path / "again.npy")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert psnr(np.load(tmp_path / "again.npy"), expected) >= 60
    assert graphs.beside(model).is_fifo() and all(path.is_file() for path in cached)  # ours made again


def test_the_cache_is_not_needed_to_render(tiny_model: Path, tmp_path: Path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("STYLIZE_CACHE_DIR", str(blocker / "cache"))
    photo = make_photo(tmp_path / "p.png")
    for backend in ("auto", "onnx"):
        out = tmp_path / f"{backend}.png"
        with pytest.warns(RuntimeWarning, match="could not cache the ONNX graph"):
            result = CliRunner().invoke(app, ["apply", str(photo), "--model", str(tiny_model), "--style", "starry",
                                              "--backend", backend, "--device", "cpu", "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert out.is_file()
    assert blocker.read_text() == "x"


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_photo_too_small_for_the_network_fails_alone(tiny_model: Path, tmp_path: Path, workers: str):
    folder = tmp_path / "in"
    make_photo(folder / "a.png", (40, 36))
    for name, size in {"b-1x1.png": (1, 1), "c-3x3.png": (3, 3), "d-2000x1.png": (2000, 1), "e-wide.png": (200, 12)}.items():
        Image.new("RGB", size, (200, 100, 50)).save(folder / name)
    make_photo(folder / "f.png", (48, 40))
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "stylize", "apply", str(folder), "-o", str(out), "--model",
                          str(tiny_model), "--style", "wave", "--backend", "onnx", "--device", "cpu", "--json",
                          "--max-size", "16", "--workers", workers, "-q"], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=tmp_path)
    assert run.returncode == 1
    records = {Path(r["input"]).name: r for r in map(json.loads, run.stdout.splitlines())}
    assert sorted(records) == ["a.png", "b-1x1.png", "c-3x3.png", "d-2000x1.png", "e-wide.png", "f.png"]
    assert {name for name, r in records.items() if r["status"] == "ok"} == {"a.png", "f.png"}
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "f.png"]
    errors = run.stderr.splitlines()
    assert len(errors) == 4 and all(line.startswith("error: ") for line in errors), run.stderr
    for name in ("b-1x1.png", "c-3x3.png", "d-2000x1.png", "e-wide.png"):  # e: --max-size made it 16x1
        assert "the network needs at least 8 px on each side" in records[name]["error"]
    assert "\x1b" not in run.stderr and "onnxruntime" not in run.stderr.lower()


def record_passes(onnx: OnnxStylizer) -> list[tuple[int, ...]]:
    """The image size of every pass ``onnx`` runs from now on, appended as it runs."""
    sizes: list[tuple[int, ...]] = []
    run = onnx.session.run
    onnx.session = type("Recorder", (), {"run": lambda self, names, feed: sizes.append(feed["image"].shape[-2:])
                                         or run(names, feed)})()
    return sizes


def test_a_large_photo_renders_in_passes_of_at_most_a_tile(tiny_model: Path):
    """The memory bound of the ONNX path: no pass of the network sees more than a tile's pixels."""
    onnx = OnnxStylizer.load(tiny_model)
    sizes = record_passes(onnx)
    onnx.stylize(np.random.default_rng(0).random((3, 600, 2300), np.float32), onnx.choose("wave")[0],
                 ApplySettings(work_size=0))
    # The statistics of the whole (with its mirrored border), downscaled.
    assert len(sizes) > 3 and sizes[0] == (round((600 + 2 * EDGE_BORDER) / (2300 + 2 * EDGE_BORDER) * AUTO_TILE_ONNX),
                                           AUTO_TILE_ONNX)
    assert all(max(size) <= AUTO_TILE_ONNX + 3 for size in sizes)


@pytest.mark.parametrize("shape", [(720, 1280), (300, 2300), (AUTO_TILE_ONNX, AUTO_TILE_ONNX)])
def test_a_photo_with_no_more_pixels_than_a_tile_is_one_pass(tiny_model: Path, shape: tuple[int, int]):
    """Memory follows pixels, not the long side: a 720p video frame or a panorama of a tile's pixels
    is one pass (tiles would add a statistics pass and overlaps: every frame twice the work)."""
    onnx = OnnxStylizer.load(tiny_model)
    sizes = record_passes(onnx)
    onnx.stylize(np.random.default_rng(0).random((3, *shape), np.float32), onnx.choose("wave")[0],
                 ApplySettings(work_size=0))
    assert sizes == [(shape[0] + 2 * EDGE_BORDER, shape[1] + 2 * EDGE_BORDER)]


MEMORY_PROBE = """
import sys
import numpy as np
from stylize.apply.onnx_backend import OnnxStylizer
from stylize.apply.tiling import ApplySettings

def peak_kb():  # this process's own high-water mark (ru_maxrss would carry the parent's across exec)
    status = open("/proc/self/status").read()
    return int(status.split("VmHWM:")[1].split()[0])

onnx = OnnxStylizer.load(sys.argv[1], threads=1)
photo = np.random.default_rng(0).random((3, 1600, 1600), np.float32)
onnx.stylize(photo[:, :64, :64], onnx.choose("wave")[0])
before = peak_kb()
onnx.stylize(photo, onnx.choose("wave")[0], ApplySettings(work_size=0, tile_size=int(sys.argv[2])))
print(peak_kb() - before)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak memory from Linux's /proc")
def test_tiles_bound_the_peak_memory(tiny_model: Path):
    rise = {}
    for tile in (0, 400):
        run = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(tiny_model), str(tile)], capture_output=True,
                             text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=600)
        assert run.returncode == 0, run.stderr
        rise[tile] = int(run.stdout)
    assert rise[400] < rise[0] / 3, rise  # kB of peak resident memory above the loaded model and photo
