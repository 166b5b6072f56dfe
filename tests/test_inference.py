"""The Python API: Stylizer.apply, its controls, tiling with shared statistics, precision."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY_STYLES, make_photo
from stylize import Stylizer
from stylize.errors import StylizeError
from stylize.io.images import read_image
from stylize.config import PRESETS
from stylize.config import EDGE_BORDER, ApplySettings
from stylize.apply.tiling import keep_chroma, tile_margin, tile_spans
from stylize.config import NetConfig
from stylize.model.network import StyleNet


@pytest.fixture(scope="module")
def stylizer(tiny_model: Path) -> Stylizer:
    return Stylizer.load(tiny_model, device="cpu")


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    return make_photo(tmp_path / "photo.png", (48, 40), seed=2)


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img).astype(np.int16)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / ((a - b) ** 2).mean()))


def chroma(rgb: torch.Tensor) -> torch.Tensor:
    """(Cb, Cr) of BT.601 YCbCr."""
    r, g, b = rgb
    y = 0.299 * r + 0.587 * g + 0.114 * b
    return torch.stack([(b - y) * 0.564, (r - y) * 0.713])


def test_styles_and_lazy_import():
    code = "import sys, stylize; assert 'torch' not in sys.modules; print(stylize.__version__)"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_styles_listed_and_different(stylizer, photo):
    assert stylizer.styles == TINY_STYLES
    a = pixels(stylizer.apply(photo, style="starry"))
    b = pixels(stylizer.apply(photo, style="wave"))
    assert a.shape == (40, 48, 3) and np.abs(a - b).mean() > 5


def test_strength_zero_is_the_photo_and_half_is_between(stylizer, photo):
    original = pixels(Image.open(photo))
    assert np.array_equal(pixels(stylizer.apply(photo, style="starry", strength=0.0)), original)
    full = pixels(stylizer.apply(photo, style="starry"))
    half = pixels(stylizer.apply(photo, style="starry", strength=0.5))
    assert np.abs(half - (full + original) / 2).max() <= 1.0
    for bad in (-0.1, 1.01, float("nan")):
        with pytest.raises(StylizeError, match="strength must be between 0 and 1"):
            stylizer.apply(photo, style="starry", strength=bad)


def test_preserve_color_keeps_the_photos_chroma(stylizer, photo):
    rgb = read_image(photo).rgb
    choice = stylizer.choose("scream")[0]
    plain = stylizer.stylize(rgb, choice)
    kept = stylizer.stylize(rgb, choice, ApplySettings(preserve_color=True))
    inside = ((kept > 0.001) & (kept < 0.999)).all(0)  # clipping to [0, 1] may change colour
    assert inside.float().mean() > 0.5
    assert (chroma(kept) - chroma(rgb))[:, inside].abs().max() < 1e-5
    assert (chroma(plain) - chroma(rgb))[:, inside].abs().mean() > 0.02  # the style did change colours
    luma = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
    assert ((kept - plain) * luma).sum(0)[inside].abs().max() < 1e-5  # luminance from the stylized image


def test_keep_chroma_of_identical_images_is_identity():
    x = torch.rand(3, 5, 7)
    assert torch.allclose(keep_chroma(x, x), x)


def test_one_hot_mix_equals_plain_style_and_mix_is_between(stylizer, photo):
    plain = pixels(stylizer.apply(photo, style="great_wave"))
    assert np.array_equal(pixels(stylizer.apply(photo, style="wave:1,starry:0")), plain)
    assert np.array_equal(pixels(stylizer.apply(photo, style={"wave": 3})), plain)
    mixed = pixels(stylizer.apply(photo, style="wave:0.5,starry:0.5"))
    other = pixels(stylizer.apply(photo, style="starry"))
    assert np.abs(mixed - plain).mean() > 1 and np.abs(mixed - other).mean() > 1


def test_apply_requires_one_style(stylizer, photo):
    with pytest.raises(StylizeError, match="choose a style"):
        stylizer.apply(photo)
    with pytest.raises(StylizeError, match="renders one style"):
        stylizer.apply(photo, style="all")


def test_inputs_pil_path_tensor_alpha_and_icc(stylizer, tmp_path):
    rgba = Image.new("RGBA", (40, 32), (200, 100, 50, 255))
    rgba.putalpha(Image.linear_gradient("L").resize((40, 32)))
    from PIL import ImageCms

    rgba.info["icc_profile"] = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = stylizer.apply(rgba, style="starry")
    assert out.mode == "RGBA" and out.size == (40, 32)
    assert np.array_equal(np.asarray(out.getchannel("A")), np.asarray(rgba.getchannel("A")))
    assert out.info["icc_profile"] == rgba.info["icc_profile"]
    rgba.save(tmp_path / "a.png")
    assert np.array_equal(pixels(stylizer.apply(tmp_path / "a.png", style="starry")), pixels(out))
    tensor = torch.rand(4, 32, 40)
    from_tensor = stylizer.apply(tensor, style="starry")
    assert from_tensor.mode == "RGBA" and from_tensor.size == (40, 32)
    assert stylizer.apply(tensor[None, :3], style="starry").mode == "RGB"
    with pytest.raises(StylizeError, match=r"shape \(3, H, W\) or \(4, H, W\)"):
        stylizer.apply(torch.rand(2, 8, 8), style="starry")
    with pytest.raises(StylizeError, match="cannot stylize a int"):
        stylizer.apply(3, style="starry")
    with pytest.raises(StylizeError, match="no such file"):
        stylizer.apply(tmp_path / "missing.jpg", style="starry")


def test_max_size_downscales_photo_and_alpha(stylizer):
    img = Image.new("LA", (100, 60), (128, 200))
    out = stylizer.apply(img, style="wave", max_size=50)
    assert out.size == (50, 30) and out.mode == "RGBA"
    assert stylizer.apply(img, style="wave", max_size=500).size == (100, 60)  # never upscales
    with pytest.raises(StylizeError, match="max size must be at least 8"):
        stylizer.apply(img, style="wave", max_size=4)


def test_tiny_image_is_a_clear_error(stylizer):
    with pytest.raises(StylizeError, match="at least 8 px"):
        stylizer.apply(Image.new("RGB", (5, 30)), style="wave")


# --------------------------------------------------------------------------- tiling


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> torch.Tensor:
    return read_image(make_photo(tmp_path_factory.mktemp("big") / "big.png", (184, 136), seed=5)).rgb


def test_tiles_with_full_image_statistics_match_the_untiled_result(stylizer, big):
    choice = stylizer.choose("starry")[0]
    whole = stylizer.stylize(big, choice, ApplySettings(tile_size=0))
    tiled = stylizer.stylize(big, choice, ApplySettings(tile_size=stylizer.min_tile, stats_size=0))
    assert len(tile_spans(184, stylizer.min_tile, tile_margin(stylizer.net.config))) >= 3  # really tiled
    assert (tiled - whole).abs().max() < 1e-5


def test_tiles_with_downscaled_statistics_are_close_and_beat_per_tile_statistics(stylizer, big):
    choice = stylizer.choose("starry")[0]
    whole = stylizer.stylize(big, choice, ApplySettings(tile_size=0))
    tiled = stylizer.stylize(big, choice, ApplySettings(tile_size=stylizer.min_tile, stats_size=150))
    assert psnr(tiled, whole) > 30
    # The same tiles, each normalized by its own statistics: what shared statistics avoid.
    margin, tile = tile_margin(stylizer.net.config), stylizer.min_tile
    naive = torch.empty_like(whole)
    weights = torch.tensor([choice.weights])
    with torch.no_grad():
        for y0, y1, top, bottom in tile_spans(big.shape[1], tile, margin):
            for x0, x1, left, right in tile_spans(big.shape[2], tile, margin):
                piece = stylizer.net(big[None, :, y0:y1, x0:x1], weights)[0]
                naive[:, top:bottom, left:right] = piece[:, top - y0:bottom - y0, left - x0:right - x0]
    assert psnr(tiled, whole) > psnr(naive, whole) + 3


@pytest.mark.parametrize("length, tile", [(100, 112), (113, 112), (184, 112), (300, 113), (1001, 240), (4099, 2048)])
def test_tile_spans_cover_exactly_aligned_and_clear_of_edges(length, tile):
    margin = 28
    spans = tile_spans(length, tile, margin)
    assert spans[0][0] == 0 and spans[0][2] == 0 and spans[-1][1] == length and spans[-1][3] == length
    for (start, end, keep, stop), following in zip(spans, spans[1:] + [None], strict=True):
        assert start % 4 == 0 and start <= keep < stop <= end
        assert end - start <= max(tile, length if len(spans) == 1 else 0) + 3
        if following is not None:
            assert following[2] == stop  # the kept parts meet: no gap, no overlap
            assert stop <= end - margin and following[2] >= following[0] + margin


@pytest.mark.parametrize("config", [NetConfig(channels=(8, 16, 32), n_residual=1), NetConfig(n_residual=5),
                                    PRESETS["small"], PRESETS["fast"],
                                    NetConfig(channels=(8, 16, 32), n_residual=1, upsample="shuffle")],
                         ids=["tiny", "johnson", "small", "fast", "shuffle-full-res"])
def test_tile_margin_covers_the_receptive_field(config):
    torch.manual_seed(0)
    net = StyleNet(config).eval()
    x = torch.rand(1, 3, 160, 160)
    bumped = x.clone()
    bumped[..., 80, 80] += 1
    norms = [m for m in net.modules() if hasattr(m, "stats")]
    from stylize.model.norm import NormStats, shared_stats

    stats = NormStats()
    with torch.no_grad(), shared_stats(net, stats):  # fixed statistics isolate the convolutions' reach
        a = net(x, 0)
        stats.replay()
        b = net(bumped, 0)
    assert norms
    # 1e-5, not 0: Winograd-style convolution kernels spread rounding noise (~1e-7) across their
    # tiles, beyond the exact receptive field; far below what an 8-bit output can show.
    changed = ((a - b).abs() > 1e-5).any(1)[0].nonzero()
    reach = int((changed - 80).abs().max())
    assert 0 < reach <= tile_margin(config) and tile_margin(config) - reach <= 8


def test_tile_size_too_small_for_the_network_is_an_error(stylizer, big):
    with pytest.raises(StylizeError, match=f"use at least {stylizer.min_tile}"):
        stylizer.stylize(big, stylizer.choose("wave")[0], ApplySettings(tile_size=64))


def test_out_of_memory_retries_with_smaller_tiles(stylizer, big, monkeypatch):
    """Auto tiling halves the tile on an out-of-memory error; an explicit tile size reports it."""
    real = type(stylizer)._forward
    sizes = []

    def forward(self, x, weights, stats=None):
        sizes.append(max(x.shape[-2:]))
        if max(x.shape[-2:]) > 120:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 GiB")
        return real(self, x, weights, stats)

    monkeypatch.setattr(type(stylizer), "_forward", forward)
    monkeypatch.setattr("stylize.apply.tiling.AUTO_TILE_OTHER", 400)
    choice = stylizer.choose("wave")[0]
    out = stylizer.stylize(big, choice)
    assert out.shape == big.shape and torch.isfinite(out).all()
    assert sizes[0] == 184 + 2 * EDGE_BORDER and max(sizes[1:]) > 0 and sizes[-1] <= 120
    with pytest.raises(StylizeError, match="out of cpu memory for a 184x136 image"):
        stylizer.stylize(big, choice, ApplySettings(tile_size=0))


# --------------------------------------------------------------------------- stroke size (working resolution)


@pytest.fixture
def fresh(tiny_model: Path) -> Stylizer:
    """A stylizer of its own: the shared one remembers the tile size of earlier out-of-memory retries."""
    return Stylizer.load(tiny_model, device="cpu")


def record_network_inputs(stylizer, monkeypatch) -> list[tuple[int, int]]:
    """The (H, W) of every image the network is run on, from now on."""
    real = type(stylizer)._forward
    sizes = []

    def forward(self, x, weights, stats=None):
        sizes.append(tuple(x.shape[-2:]))
        return real(self, x, weights, stats)

    monkeypatch.setattr(type(stylizer), "_forward", forward)
    return sizes


def test_large_photos_are_painted_at_the_working_size_and_keep_their_size(fresh, big, monkeypatch):
    stylizer = fresh
    choice = stylizer.choose("starry")[0]
    sizes = record_network_inputs(stylizer, monkeypatch)
    out = stylizer.stylize(big, choice, ApplySettings(work_size=92))
    assert sizes == [(68 + 2 * EDGE_BORDER, 92 + 2 * EDGE_BORDER)] and out.shape == big.shape  # border counted
    assert ApplySettings().paints_smaller((768, 1025)) and not ApplySettings().paints_smaller((768, 1024))
    img = stylizer.apply(tensor_to_image(big), style="starry", work_size=92)
    assert img.size == (184, 136)


def tensor_to_image(rgb: torch.Tensor) -> Image.Image:
    return Image.fromarray(rgb.mul(255).round().byte().permute(1, 2, 0).numpy())


def test_working_size_zero_or_larger_than_the_photo_paints_at_full_resolution(fresh, big, monkeypatch):
    stylizer = fresh
    choice = stylizer.choose("starry")[0]
    sizes = record_network_inputs(stylizer, monkeypatch)
    native = stylizer.stylize(big, choice, ApplySettings(work_size=0))
    assert sizes == [(136 + 2 * EDGE_BORDER, 184 + 2 * EDGE_BORDER)]
    assert torch.equal(stylizer.stylize(big, choice, ApplySettings(work_size=184)), native)
    small = stylizer.stylize(big, choice, ApplySettings(work_size=92))
    assert (small - native).abs().mean() > 0.01  # larger strokes: a different picture
    with pytest.raises(StylizeError, match="work size must be 0 .* or at least 8 px"):
        ApplySettings(work_size=4)


def test_tiling_still_works_at_the_working_size(fresh, big, monkeypatch):
    stylizer = fresh
    choice = stylizer.choose("starry")[0]
    whole = stylizer.stylize(big, choice, ApplySettings(work_size=160, tile_size=0))
    sizes = record_network_inputs(stylizer, monkeypatch)
    tiled = stylizer.stylize(big, choice, ApplySettings(work_size=160, tile_size=stylizer.min_tile, stats_size=0))
    assert sizes[0] == (118 + 2 * EDGE_BORDER, 160 + 2 * EDGE_BORDER) and len(sizes) >= 3 and max(map(max, sizes[1:])) <= stylizer.min_tile + 3
    assert tiled.shape == big.shape and (tiled - whole).abs().max() < 1e-5


@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_restore_detail_brings_back_the_photos_fine_luminance(backend):
    """A grey photo with one-pixel detail: upsampling alone loses it, restore_detail returns it."""
    from stylize.apply import onnx_backend, torch_backend
    from stylize.io.pixels import resize_long_side
    from stylize.apply.tiling import restore_detail

    torch.manual_seed(0)
    grey = (0.5 + 0.2 * torch.rand(1, 64, 96)).expand(3, -1, -1).contiguous()
    small = resize_long_side(grey, 32)
    red = torch.zeros_like(small)
    red[0] = 0.6
    if backend == "numpy":
        grey, small, red, up = grey.numpy(), small.numpy(), red.numpy(), onnx_backend.upsample
    else:
        up = torch_backend.upsample
    back = restore_detail(grey, small, small, up)  # an identity painter gives the photo back
    assert abs(back - grey).max() < 1e-5
    # A painter that turns everything red keeps the red and gets the photo's detail on top.
    out = restore_detail(grey, small, red, up)
    detail = grey[0] - up(small, (64, 96))[0]
    assert abs(out[1] - detail.clip(0, 1)).max() < 1e-5 and abs(detail).max() > 0.05
    assert abs(out[0].mean() - 0.6) < 0.01 and out[2].max() < 0.3


# --------------------------------------------------------------------------- precision


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_is_faithful(tiny_model, big, precision):
    choice = Stylizer.load(tiny_model, device="cpu").choose("scream")[0]
    reference = Stylizer.load(tiny_model, device="cpu", precision="fp32").stylize(big, choice)
    half = Stylizer.load(tiny_model, device="cpu", precision=precision).stylize(big, choice)
    assert psnr(half, reference) > 30


def test_precision_defaults_and_errors(tiny_model):
    assert Stylizer.load(tiny_model, device="cpu").half_dtype is None  # fp32 on CPUs
    with pytest.raises(StylizeError, match="unknown precision 'fp8'"):
        Stylizer.load(tiny_model, device="cpu", precision="fp8")


def test_half_precision_overflow_falls_back_to_fp32(tiny_model):
    base = Stylizer.load(tiny_model, device="cpu", precision="fp32")
    with torch.no_grad():
        base.net.down[0].conv.weight.mul_(1e6)  # activations far beyond fp16's 65504
    half = Stylizer(base.net, base.styles, device="cpu", precision="fp16")
    x = torch.rand(3, 32, 32)
    choice = base.choose("starry")[0]
    with torch.autocast("cpu", dtype=torch.float16), torch.no_grad():
        assert not torch.isfinite(base.net(x[None], torch.tensor([choice.weights]))).all()
    out = half.stylize(x, choice)
    assert torch.isfinite(out).all()
    assert torch.allclose(out, base.stylize(x, choice), atol=1e-6)


def test_default_model(tiny_model, monkeypatch, tmp_path):
    monkeypatch.setenv("STYLIZE_MODEL", str(tiny_model))
    assert Stylizer.load(device="cpu").styles == TINY_STYLES
    monkeypatch.delenv("STYLIZE_MODEL")
    monkeypatch.setattr("stylize.io.weights.WEIGHTS_DIR", tmp_path)
    with pytest.raises(StylizeError, match="no --model given and no shipped model"):
        Stylizer.load(device="cpu")
