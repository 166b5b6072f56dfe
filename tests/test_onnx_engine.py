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

from conftest import make_photo
from stylize.cli import app
from stylize.errors import StylizeError
from stylize.imageio import read_image
from stylize.inference import Stylizer
from stylize.onnx_engine import OnnxStylizer, graph_path, onnx_backend_applies, resize_long_side
from stylize.render import ApplySettings, min_tile

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

REPO = Path(__file__).resolve().parent.parent


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
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
    ours = onnx.stylize(photo, onnx.choose(style)[0], settings)
    theirs = reference.stylize(torch.from_numpy(photo), reference.choose(style)[0], settings).numpy()
    assert ours.shape == theirs.shape
    # max_size, work_size: Pillow's and PyTorch's resizers differ slightly.
    assert psnr(ours, theirs) >= (35 if settings.max_size or settings.work_size else 40)


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
    from stylize.imageio import resize_long_side as torch_resize

    ours = resize_long_side(photo, 33)
    theirs = torch_resize(torch.from_numpy(photo), 33).numpy()
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
                                      "--backend", "onnx", "--style-image", str(photo)])
    assert result.exit_code == 1 and "--backend onnx" in result.output


def test_apply_on_a_cpu_does_not_import_torch_once_the_graph_is_cached(tiny_model: Path, tmp_path: Path):
    photo = make_photo(tmp_path / "p.png")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    probe = ("import sys\nfrom stylize.cli import app\n"
             "try:\n    app(sys.argv[1:])\nexcept SystemExit as exc:\n    code = exc.code\n"
             "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', code)\n")
    for name in ("first.png", "second.png"):
        run = subprocess.run([sys.executable, "-c", probe, "apply", str(photo), "--model", str(tiny_model),
                              "--style", "wave", "--device", "cpu", "-o", str(tmp_path / name)],
                             capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
        assert run.returncode == 0, run.stderr
        assert (tmp_path / name).is_file()
    assert run.stdout.split() == ["NO-TORCH", "0"]  # the first run may have exported the graph
    assert graph_path(tiny_model).is_file()
    meta = OnnxStylizer(graph_path(tiny_model)).session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["config"])["n_residual"] == 1


def test_auto_falls_back_to_torch_when_the_cache_cannot_be_written(tiny_model: Path, tmp_path: Path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("STYLIZE_CACHE_DIR", str(blocker / "cache"))
    photo = make_photo(tmp_path / "p.png")
    auto = CliRunner().invoke(app, ["apply", str(photo), "--model", str(tiny_model), "--style", "starry",
                                    "-o", str(tmp_path / "auto.png")])
    assert auto.exit_code == 0, auto.output
    forced = CliRunner().invoke(app, ["apply", str(photo), "--model", str(tiny_model), "--style", "starry",
                                      "--backend", "onnx", "-o", str(tmp_path / "forced.png")])
    assert forced.exit_code == 1 and "cache folder" in forced.output
    assert not (tmp_path / "forced.png").exists()
