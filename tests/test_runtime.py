"""The plain install: apply and the light commands run without PyTorch; the rest name the extra to add."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from conftest import make_photo, make_tiny_model

REPO = Path(__file__).resolve().parent.parent

PROBE = ("import sys\nfrom stylize.cli import main\ncode = main(sys.argv[1:])\n"
         "print('torch' in sys.modules, code)\n")
"""Runs the CLI in this process, then says whether it imported torch."""

LIGHT = [["--help"], ["--version"], ["styles"], ["info"],
         ["apply", "photo.png", "--style", "starry", "--device", "cpu", "-o", "out.png"]]


def environment(python_path: list[Path], cache: Path) -> dict[str, str]:
    drop = ("PYTHONPATH", "STYLIZE_MODEL", "STYLIZE_CACHE_DIR")
    return {k: v for k, v in os.environ.items() if k not in drop} | {
        "PYTHONPATH": os.pathsep.join(map(str, python_path)), "STYLIZE_CACHE_DIR": str(cache)}


def plain_install(site: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``python ARGS`` where PyTorch is not installed (``-S``: only ``site``'s packages)."""
    return subprocess.run([sys.executable, "-S", *args], cwd=cwd, capture_output=True, text=True,
                          env=environment([REPO, site], cwd / "cache"), timeout=300)


@pytest.mark.parametrize("args", LIGHT, ids=lambda args: args[0])
def test_light_commands_import_no_torch(args: list[str], tmp_path: Path):
    make_photo(tmp_path / "photo.png", (64, 48))
    run = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=tmp_path, capture_output=True, text=True,
                         env=environment([REPO], tmp_path / "cache"), timeout=300)
    assert run.stdout.splitlines()[-1] == "False 0", run.stderr


def test_light_commands_run_where_torch_is_not_installed(site_without_torch: Path, tmp_path: Path):
    make_photo(tmp_path / "photo.png", (64, 48))
    gone = plain_install(site_without_torch, ["-c", "import torch"], tmp_path)
    assert "No module named 'torch'" in gone.stderr  # the environment is a real plain install
    for args in LIGHT:
        run = plain_install(site_without_torch, ["-m", "stylize", *args], tmp_path)
        assert run.returncode == 0, (args, run.stderr)
    listed = plain_install(site_without_torch, ["-m", "stylize", "styles"], tmp_path).stdout
    assert "starry_night" in listed
    with Image.open(tmp_path / "out.png") as out:
        assert out.size == (64, 48)
    assert not list((tmp_path / "cache").glob("onnx/*.onnx"))  # the shipped graph, nothing made (only optimized)


def test_commands_that_need_torch_name_the_extra(site_without_torch: Path, tmp_path: Path):
    photo = make_photo(tmp_path / "photo.png")
    model = make_tiny_model(tmp_path / "mine.safetensors")
    commands = {
        "train": ["train", str(tmp_path), "-c", str(tmp_path), "-o", "t.safetensors"],
        "add-style": ["add-style", str(photo), "-c", str(tmp_path), "-o", "a.safetensors"],
        "evaluate": ["evaluate", "--styles", str(tmp_path), "--photos", str(tmp_path)],
        "style-image": ["apply", str(photo), "--style-image", str(photo)],
        "export-onnx": ["export", "--onnx", "m.onnx"],
        "export-lean": ["export", "-o", "lean.safetensors"],
        "remove-style": ["remove-style", "udnie", "-o", "fewer.safetensors"],
        "torch": ["apply", str(photo), "--backend", "torch", "-o", "t.png"],
        "cuda": ["apply", str(photo), "--device", "cuda", "-o", "c.png"],
        "no-graph": ["apply", str(photo), "-m", str(model), "-o", "g.png"],
    }
    extras = {"train": "train", "add-style": "train", "evaluate": "train", "style-image": "train"}
    for name, args in commands.items():
        run = plain_install(site_without_torch, ["-m", "stylize", *args], tmp_path)
        assert run.returncode == 1, (name, run.stderr)
        assert len(run.stderr.splitlines()) == 1, (name, run.stderr)
        extra = extras.get(name, "torch")
        assert f"pip install -e '.[{extra}]'" in run.stderr, (name, run.stderr)
        assert f"-py3-none-any.whl[{extra}]'" in run.stderr, (name, run.stderr)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "cache") == ["mine.safetensors", "photo.png"]


def test_a_graph_beside_a_model_that_is_not_its_own_is_named_where_torch_is_not_installed(
        site_without_torch: Path, tmp_path: Path):
    """Without PyTorch nothing can make the right graph: the one line says which graph was passed over."""
    from stylize.apply import graphs

    photo = make_photo(tmp_path / "photo.png")
    model = make_tiny_model(tmp_path / "mine.safetensors", seed=1)
    graphs.export_graph(make_tiny_model(tmp_path / "other.safetensors", seed=2), graphs.beside(model))
    run = plain_install(site_without_torch, ["-m", "stylize", "apply", str(photo), "-m", str(model), "-o", "g.png"],
                        tmp_path)
    assert run.returncode == 1 and len(run.stderr.splitlines()) == 1, run.stderr
    assert f"has no usable ONNX graph ({graphs.beside(model)} is not its own)" in run.stderr, run.stderr
    assert not (tmp_path / "g.png").exists()


def test_a_command_imports_no_other_commands_module(tmp_path: Path):
    """``stylize styles`` registers (so imports and builds) ``styles`` alone, not training's or apply's options."""
    probe = ("import sys\nfrom stylize.cli import main\ncode = main(sys.argv[1:])\n"
             "print(' '.join(sorted(m for m in sys.modules if m.startswith('stylize.cli.'))), code)\n")
    run = subprocess.run([sys.executable, "-c", probe, "styles"], cwd=tmp_path, capture_output=True, text=True,
                         env=environment([REPO], tmp_path / "cache"), timeout=300)
    modules, code = run.stdout.splitlines()[-1].rsplit(" ", 1)
    assert code == "0", run.stderr
    assert "stylize.cli.models" in modules.split()
    assert not {"stylize.cli.training", "stylize.cli.apply", "stylize.cli.evaluate"} & set(modules.split())


def test_applying_to_a_photo_loads_neither_training_settings_nor_the_video_module(tmp_path: Path):
    """Each module costs every ``apply`` its import: the training settings (:mod:`stylize.config`
    loads its parts on first use) and video stay unloaded for a photo."""
    make_photo(tmp_path / "p.png", (40, 32))
    probe = ("import sys\nfrom stylize.cli import main\ncode = main(sys.argv[1:])\n"
             "print(' '.join(sorted(m for m in sys.modules if m.startswith('stylize.'))), code)\n")
    run = subprocess.run([sys.executable, "-c", probe, "apply", "p.png", "-s", "starry", "-m", "fast", "-q"],
                         cwd=tmp_path, capture_output=True, text=True, env=environment([REPO], tmp_path / "cache"),
                         timeout=300)
    modules, code = run.stdout.splitlines()[-1].rsplit(" ", 1)
    assert code == "0", run.stderr
    assert {"stylize.apply.onnx_backend", "stylize.config.apply"} <= set(modules.split())
    assert not {"stylize.config.train", "stylize.apply.video", "stylize.cli.training"} & set(modules.split())
    assert (tmp_path / "p-starry_night.png").is_file()


def test_the_command_named_is_the_one_registered():
    from stylize.cli.registrar import COMMANDS, commands_for

    assert commands_for(["apply", "photo.jpg", "--style", "starry"]) == ["apply"]
    assert commands_for(["--debug", "styles"]) == ["styles"]
    for everything in ([], ["--help"], ["--version"], ["aply", "photo.jpg"]):  # help, completion, a typo: all
        assert commands_for(everything) == list(COMMANDS)
