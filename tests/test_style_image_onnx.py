"""A style learned from a picture renders on ONNX Runtime: as on PyTorch, and from the cache without PyTorch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_painting, make_photo, make_tiny_model, needs_fifos
from PIL import Image
from test_runtime import REPO, environment, plain_install

from stylize.apply.onnx_backend import LearnedStyle, borrowed_row
from stylize.apply.open import open_onnx
from stylize.apply.torch_backend import Stylizer
from stylize.errors import StylizeError
from stylize.io.images import read_image
from stylize.io.pixels import to_uint8
from stylize.io.style_cache import model_weights
from stylize.train.finetune import Overrides, learn_style, learned_rows

pytest.importorskip("onnx")
QUICK = Overrides(steps=3, image_size=32, batch_size=2, style_size=48)


def test_a_learned_style_renders_on_onnx_runtime_as_on_torch(styles_cache, tmp_path: Path):
    model = make_tiny_model(tmp_path / "model.safetensors", ["a", "b", "c"])
    photo = make_photo(tmp_path / "holiday.png", size=(72, 56), seed=3)
    learned = learn_style(model, make_painting(tmp_path / "dusk.png", seed=4), [photo], overrides=QUICK,
                          device="cpu")
    row = borrowed_row("dusk:1,a:1", ["a", "b", "c"], "dusk")
    assert row == 1  # the first style the request does not use
    on_onnx = open_onnx(model, None, LearnedStyle.make("dusk", row, learned_rows(learned), model_weights(model)))
    on_torch = Stylizer(learned.net, learned.styles, device="cpu")
    assert on_onnx.styles == on_torch.styles == ["a", "b", "c", "dusk"]
    arrays, tensors = read_image(photo, arrays=True).rgb, read_image(photo).rgb
    for style in ("dusk", "dusk:1,a:1", "c:0.3,dusk:0.7", "a"):
        ours = to_uint8(on_onnx.stylize(arrays, on_onnx.choose(style)[0])).astype(int)
        theirs = to_uint8(on_torch.stylize(tensors, on_torch.choose(style)[0])).astype(int)
        assert np.abs(ours - theirs).max() <= 3, style
    with pytest.raises(StylizeError, match="cannot be rendered with dusk") as info:  # the borrowed row itself
        on_onnx.style_weights(on_onnx.choose("dusk:1,b:1")[0])
    assert "\n" not in str(info.value)


def test_a_request_that_leaves_no_row_free_is_one_line():
    assert borrowed_row(None, ["a", "b"], "new") == 0
    with pytest.raises(StylizeError, match="asks for all of them; use --backend torch") as info:
        borrowed_row("all", ["a", "b"], "new")
    assert "\n" not in str(info.value)


def test_a_cached_style_image_call_runs_where_torch_is_not_installed(site_without_torch: Path, tmp_path: Path):
    """The first call learns (PyTorch); the second finds the style in the cache and renders it
    on ONNX Runtime in a plain install, where ``import torch`` fails, to the same picture."""
    from stylize.io.weights import cache_dir
    from stylize.train.vgg import CACHE_FILENAME, load_vgg

    load_vgg()
    (tmp_path / "cache").mkdir()
    shutil.copy(cache_dir() / CACHE_FILENAME, tmp_path / "cache" / CACHE_FILENAME)
    model = make_tiny_model(tmp_path / "model.safetensors", ["a", "b"])
    photo = make_photo(tmp_path / "photo.png", (64, 48))
    painting = make_painting(tmp_path / "dusk.png", seed=2)
    args = ["-m", "stylize", "apply", str(photo), "-m", str(model), "--style-image", str(painting),
            "--style-steps", "1", "--device", "cpu", "-o"]
    first = subprocess.run([sys.executable, *args, "first.png"], cwd=tmp_path, capture_output=True, text=True,
                           env=environment([REPO], tmp_path / "cache"), timeout=600)
    assert first.returncode == 0, first.stderr
    assert len(list((tmp_path / "cache" / "styles").iterdir())) == 1
    second = plain_install(site_without_torch, [*args, "second.png"], tmp_path)
    assert second.returncode == 0, second.stderr
    with Image.open(tmp_path / "first.png") as a, Image.open(tmp_path / "second.png") as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_a_cached_style_that_renders_one_flat_colour_is_learned_again(styles_cache, tmp_path: Path, monkeypatch):
    """The ONNX Runtime path checks a cache entry as the learner does: rows that pass the file's
    checks but render the painting as one flat colour are not used."""
    from stylize.apply.open import open_onnx_with_style_image
    from stylize.io import style_cache
    from stylize.train import recipe

    monkeypatch.setattr(recipe, "QUICK_CPU", dict(steps=2, image_size=32, batch_size=2, style_size=48, workers=0))
    model = make_tiny_model(tmp_path / "model.safetensors", ["a", "b"])
    painting, photo = make_painting(tmp_path / "dusk.png", seed=4), make_photo(tmp_path / "p.png", (64, 48))
    weights = model_weights(model)
    key = style_cache.style_key(weights, painting, recipe.quick_settings({}, "cpu"), None)
    flat = {k: np.zeros_like(v[:1]) if k.endswith("weight") else np.full_like(v[:1], 0.5)
            for k, v in weights.items() if style_cache.is_row_key(k)}  # gamma 0: every norm outputs a constant
    style_cache.write_rows(key, flat)
    assert style_cache.read_rows(key, weights) is not None  # the file itself passes
    steps = []
    renderer = open_onnx_with_style_image(model, painting, [photo], on_step=steps.append)
    assert [report.step for report in steps] == [1, 2] and renderer.styles == ["a", "b", "dusk"]
    relearned = style_cache.read_rows(key, weights)
    assert relearned is not None and not all(np.array_equal(relearned[k], flat[k]) for k in flat)


@needs_fifos
def test_a_fifo_in_place_of_a_cached_style_is_passed_over(styles_cache, tmp_path: Path):
    """Reading a FIFO planted at a style's cache entry would wait for a writer for ever (in
    safetensors' own code, which no signal interrupts: hence the child process)."""
    from stylize.io import style_cache

    model = make_tiny_model(tmp_path / "model.safetensors", ["a", "b"])
    styles_cache.mkdir(exist_ok=True)
    os.mkfifo(style_cache.entry("b" * 64))
    code = ("import sys; from pathlib import Path; from stylize.io import style_cache; "
            "print(style_cache.read_rows('b' * 64, style_cache.model_weights(Path(sys.argv[1]))))")
    run = subprocess.run([sys.executable, "-c", code, str(model)], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "STYLIZE_CACHE_DIR": str(styles_cache.parent)})
    assert run.returncode == 0 and run.stdout == "None\n", run.stderr
