"""The mirrored border every render gets: no line along the edges (the right-edge line of The Scream)."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.edge_band import load, measure, ratios
from stylize import Stylizer
from stylize.apply.onnx_backend import OnnxStylizer
from stylize.apply.tiling import min_tile, mirror_pad, mirrored
from stylize.config import EDGE_BORDER, ApplySettings
from stylize.errors import StylizeError

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "weights" / "stylize-22.safetensors"
PHOTOS = sorted((ROOT / "examples" / "photos").glob("*.jpg"))


@pytest.mark.parametrize("length", [1, 2, 3, 8, 13])
@pytest.mark.parametrize("border", [0, 1, 5, 16, 40])
def test_mirrored_is_numpys_reflect_for_any_border(length: int, border: int):
    axis = np.arange(length)
    assert np.array_equal(axis[mirrored(length, border)], np.pad(axis, border, mode="reflect"))


def test_mirror_pad_works_on_arrays_and_tensors():
    import torch

    image = np.random.default_rng(0).random((3, 9, 11), np.float32)
    expected = np.pad(image, ((0, 0), (20, 20), (20, 20)), mode="reflect")
    assert np.array_equal(mirror_pad(image, 20), expected)
    assert np.array_equal(mirror_pad(torch.from_numpy(image), 20).numpy(), expected)


def test_border_setting_is_checked():
    assert ApplySettings().border == EDGE_BORDER
    with pytest.raises(StylizeError, match="border must be 0 .* or positive"):
        ApplySettings(border=-1)


@pytest.fixture(scope="module")
def renderers(tiny_model: Path) -> dict:
    return {"torch": Stylizer.load(tiny_model, device="cpu"), "onnx": OnnxStylizer.load(tiny_model)}


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_a_too_small_photo_is_refused_before_the_border_could_hide_it(renderers, backend):
    stylizer = renderers[backend]
    with pytest.raises(StylizeError, match="needs at least 8 px"):
        stylizer.stylize(np.zeros((3, 5, 30), np.float32), stylizer.choose("wave")[0])


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_the_border_keeps_the_size_and_changes_mostly_the_edges(renderers, backend):
    """The output is the photo's size, cropped in register: the border changes the outermost pixels
    (what the network saw beyond them), the middle only through the norm's statistics."""
    stylizer = renderers[backend]
    photo = np.random.default_rng(1).random((3, 120, 150), np.float32)
    choice = stylizer.choose("wave")[0]
    plain = np.asarray(stylizer.stylize(photo, choice, ApplySettings(border=0)))
    bordered = np.asarray(stylizer.stylize(photo, choice, ApplySettings(border=EDGE_BORDER)))
    assert bordered.shape == photo.shape
    change = np.abs(bordered - plain).mean(0)
    middle = change[40:-40, 40:-40].mean()
    assert change[:, -2:].mean() > 3 * middle and change[:, :2].mean() > 3 * middle


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_tiles_get_the_border_too(renderers, backend):
    """Tiled and whole renders agree with the border: the tiles are cut from the mirrored image."""
    stylizer = renderers[backend]
    photo = np.random.default_rng(2).random((3, 150, 200), np.float32)
    choice = stylizer.choose("starry")[0]
    whole = stylizer.stylize(photo, choice, ApplySettings(tile_size=0))
    tiled = stylizer.stylize(photo, choice, ApplySettings(tile_size=min_tile(stylizer.config), stats_size=0))
    assert np.abs(np.asarray(tiled) - np.asarray(whole)).max() < 1e-4


@pytest.fixture(scope="module")
def shipped() -> dict:
    return {"torch": Stylizer.load(SHIPPED, device="cpu"), "onnx": OnnxStylizer.load(SHIPPED)}


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_no_line_along_the_edges_of_the_scream(shipped, backend):
    """The shipped model's The Scream on the example photos at 384 px: without the border its right
    band's energy is well above the texture's own level a little further in; with it every side is
    within 1.3x of its inside."""
    stylizer = shipped[backend]
    images = [load(photo, 384, stylizer) for photo in PHOTOS]
    assert len(images) >= 4
    without = ratios(measure(stylizer, images, "the_scream", 0))
    with_border = ratios(measure(stylizer, images, "the_scream", EDGE_BORDER))
    assert without["right"] > 1.6, without
    assert max(with_border.values()) < 1.3, with_border


@pytest.mark.parametrize("backend", [OnnxStylizer, Stylizer])
def test_a_photo_of_the_tile_size_is_one_pass_border_and_all(backend, tiny_model: Path, monkeypatch: pytest.MonkeyPatch):
    """The border must not push a photo of the tile size into tiles (a statistics pass and
    overlaps: twice the time); a photo of more pixels than a tile still tiles."""
    stylizer = backend.load(tiny_model)
    passes: list[tuple[int, ...]] = []
    run = stylizer.run
    monkeypatch.setattr(stylizer, "run", lambda rgb, *a, **k: passes.append(tuple(rgb.shape[-2:])) or run(rgb, *a, **k))
    tile = 128
    photo = np.random.default_rng(0).random((3, 48, tile), dtype=np.float32)
    if backend is Stylizer:
        import torch

        photo = torch.from_numpy(photo)
    settings = ApplySettings(tile_size=tile, work_size=0)
    stylizer.render(photo, stylizer.style_weights(stylizer.choose("starry_night")[0]), settings, None)
    assert passes == [(48 + 2 * EDGE_BORDER, tile + 2 * EDGE_BORDER)]
    passes.clear()
    wider = photo.repeat(1, 1, 4) if backend is Stylizer else np.tile(photo, (1, 1, 4))  # 48 x 512 > 128 x 128
    stylizer.render(wider, stylizer.style_weights(stylizer.choose("starry_night")[0]), settings, None)
    assert len(passes) > 2  # statistics, then tiles
