"""The wheel is a real install: it carries the shipped models and runs outside the checkout.

Built from a copy of the project (so the build leaves nothing in the checkout), installed
with ``pip install --no-deps --target`` (no torch download: this interpreter's packages
serve as the dependencies, less PyTorch: ``site_without_torch``) and run from an unrelated
folder with only those folders on ``PYTHONPATH``, so the editable install of the checkout
cannot answer, and apply can only run on the wheel's own ONNX graph.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import numpy as np
from conftest import make_photo
from PIL import Image

import stylize
from stylize.apply.torch_backend import Stylizer

ROOT = Path(__file__).resolve().parent.parent


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command and return its stdout; on failure, fail with its stderr."""
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{args} exited {done.returncode}: {done.stderr}"
    return done.stdout


def test_the_distribution_name_is_the_one_the_hints_give() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == stylize.DISTRIBUTION != "stylize"
    assert project["scripts"] == {"stylize": "stylize.__main__:console"}


def test_the_wheel_applies_the_shipped_model_from_any_folder(tmp_path: Path, site_without_torch: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("stylize", "weights"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"),
         str(source)], cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    assert wheel.name.startswith(stylize.DISTRIBUTION.replace("-", "_") + "-")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    shipped = [p.name for p in (ROOT / "weights").glob("*.safetensors")]
    assert {f"stylize/_weights/{name}" for name in shipped} <= names
    assert {f"stylize/_weights/{Path(name).with_suffix('.onnx')}" for name in shipped} <= names  # apply's graphs
    assert "stylize/_weights/stylize-22.safetensors" in names

    site = tmp_path / "site"
    run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)], cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    make_photo(elsewhere / "photo.png", size=(64, 48))
    # -S and no torch on the path: the plain install, whose apply must run the wheel's own graph.
    cache = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if k != "STYLIZE_MODEL"} | {
        "PYTHONPATH": os.pathsep.join([str(site), str(site_without_torch)]), "STYLIZE_CACHE_DIR": str(cache)}
    command = [sys.executable, "-S", str(site / "bin" / "stylize")]

    imported = run([sys.executable, "-S", "-c", "import stylize; print(stylize.__file__)"], cwd=elsewhere, env=env)
    assert Path(imported.strip()).is_relative_to(site)
    assert run([*command, "--version"], cwd=elsewhere, env=env).strip() == f"stylize {stylize.__version__}"
    listed = run([*command, "styles"], cwd=elsewhere, env=env)
    assert str(site / "stylize" / "_weights" / "stylize-22.safetensors") in listed
    assert "starry_night" in listed and "great_wave" in listed
    run([*command, "apply", "photo.png", "--style", "starry"], cwd=elsewhere, env=env)
    assert not list(cache.glob("onnx/*.onnx"))  # nothing exported: the graph came from the wheel (only optimized)
    with Image.open(elsewhere / "photo-starry_night.png") as out:
        pixels = np.asarray(out)
    assert pixels.shape == (48, 64, 3) and pixels.std() > 5
    torch_path = Stylizer.load(ROOT / "weights" / "stylize-22.safetensors", device="cpu")
    expected = torch_path.apply(elsewhere / "photo.png", style="starry")
    error = np.asarray(expected, np.float64) / 255 - pixels / 255
    assert 10 * np.log10(1 / np.mean(error ** 2)) >= 40  # dB
