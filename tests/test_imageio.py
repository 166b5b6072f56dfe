"""Tests for stylize.io.images: decoding every mode, faithful writing, one-line errors.

Every image is generated here with Pillow/numpy inside ``tmp_path``.
"""

from __future__ import annotations

import errno
import io
import os
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

from stylize.io import images as imageio
from stylize.errors import StylizeError
from stylize.config import DEFAULT_MAX_PIXELS
from stylize.io.formats import SUPPORTED_EXTENSIONS, output_extension_ok
from stylize.io.images import Photo, read_image
from stylize.io.pixels import pil_to_tensor, tensor_to_pil
from stylize.io.encode import write_image, write_image_to

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def gradient_rgb(width: int = 48, height: int = 32) -> np.ndarray:
    """A smooth (H, W, 3) uint8 image: compresses well and survives lossy codecs."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack(
        [x * 255 // (width - 1), y * 255 // (height - 1), (x + y) * 255 // (width + height - 2)],
        axis=-1,
    ).astype(np.uint8)


def as_tensor(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(arr.astype(np.float32) / 255).permute(2, 0, 1).contiguous()


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def raises_one_line(match: str):
    """pytest.raises for StylizeError that also checks the message is one line."""

    class _Check:
        def __enter__(self):
            self._ctx = pytest.raises(StylizeError, match=match)
            self._info = self._ctx.__enter__()
            return self._info

        def __exit__(self, *exc):
            suppressed = self._ctx.__exit__(*exc)
            message = str(self._info.value)
            assert "\n" not in message and "\r" not in message, message
            return suppressed

    return _Check()


def dir_listing(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


# --------------------------------------------------------------------------- basics


def test_supported_extensions_and_output_check():
    assert SUPPORTED_EXTENSIONS == frozenset(
        {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
    )
    assert output_extension_ok("a/b.PNG")
    assert output_extension_ok(Path("x.jpeg"))
    assert not output_extension_ok("x.gif")
    assert not output_extension_ok("noext")


def test_default_max_pixels_is_pillows_own_default():
    assert DEFAULT_MAX_PIXELS == 89_478_485 == Image.MAX_IMAGE_PIXELS  # the library leaves Pillow's alone


def test_pil_tensor_conversions_round_trip():
    arr = gradient_rgb()
    t = pil_to_tensor(Image.fromarray(arr))
    assert t.shape == (3, 32, 48) and t.dtype == torch.float32
    assert 0.0 <= t.min() and t.max() <= 1.0
    back = np.asarray(tensor_to_pil(t))
    assert np.array_equal(back, arr)


def test_pil_to_tensor_converts_other_modes():
    t = pil_to_tensor(Image.new("L", (5, 4), 51))
    assert t.shape == (3, 4, 5)
    assert torch.allclose(t, torch.full_like(t, 0.2))


def test_tensor_to_pil_clamps_rounds_and_handles_nan():
    t = torch.tensor([-0.5, 1.5, float("nan"), 0.5 / 255 + 1e-4]).reshape(1, 1, 4).repeat(3, 1, 1)
    arr = np.asarray(tensor_to_pil(t))
    assert arr[0, :, 0].tolist() == [0, 255, 0, 1]


def test_tensor_to_pil_rejects_wrong_shape():
    with pytest.raises(ValueError):
        tensor_to_pil(torch.zeros(4, 2, 2))


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif", ".tiff"])
def test_lossless_round_trip(tmp_path, ext):
    arr = gradient_rgb()
    out = tmp_path / f"out{ext}"
    write_image(out, as_tensor(arr))
    photo = read_image(out)
    assert photo.rgb.shape == (3, 32, 48)
    assert photo.alpha is None
    assert torch.equal(photo.rgb, as_tensor(arr))
    assert photo.format in {"PNG", "BMP", "TIFF"}


@pytest.mark.parametrize("ext", [".jpg", ".jpeg", ".webp"])
def test_lossy_round_trip(tmp_path, ext):
    arr = gradient_rgb()
    out = tmp_path / f"out{ext}"
    write_image(out, as_tensor(arr), quality=95)
    photo = read_image(out)
    assert photo.rgb.shape == (3, 32, 48)
    assert (photo.rgb - as_tensor(arr)).abs().mean() < 0.02
    assert photo.format == ("WEBP" if ext == ".webp" else "JPEG")


def test_quality_changes_jpeg_size(tmp_path):
    rng = np.random.default_rng(0)
    t = torch.from_numpy(rng.random((3, 64, 64), dtype=np.float32))
    write_image(tmp_path / "lo.jpg", t, quality=10)
    write_image(tmp_path / "hi.jpg", t, quality=95)
    assert (tmp_path / "lo.jpg").stat().st_size < (tmp_path / "hi.jpg").stat().st_size


def test_explicit_format_overrides_extension(tmp_path):
    out = tmp_path / "picture.dat"
    write_image(out, as_tensor(gradient_rgb()), format="png")
    with Image.open(out) as img:
        assert img.format == "PNG"


def test_read_from_stream(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(gradient_rgb()).save(buf, format="PNG")
    buf.seek(0)
    photo = read_image(buf, name="<stdin>")
    assert torch.equal(photo.rgb, as_tensor(gradient_rgb()))


def test_write_image_to_stream():
    buf = io.BytesIO()
    write_image_to(buf, as_tensor(gradient_rgb()), format="PNG")
    buf.seek(0)
    with Image.open(buf) as img:
        assert img.format == "PNG"
        assert np.array_equal(np.asarray(img), gradient_rgb())


def test_write_image_to_non_seekable_stream_tiff():
    class Pipe(io.RawIOBase):
        def __init__(self):
            self.data = bytearray()

        def writable(self):
            return True

        def seekable(self):
            return False

        def write(self, b):
            self.data += b
            return len(b)

    pipe = Pipe()
    write_image_to(pipe, as_tensor(gradient_rgb()), format="tiff")
    with Image.open(io.BytesIO(bytes(pipe.data))) as img:
        assert img.format == "TIFF"


def test_write_image_to_broken_pipe_is_one_line():
    class Broken(io.RawIOBase):
        def writable(self):
            return True

        def write(self, b):
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    with raises_one_line("<stdout>.*Broken pipe"):
        write_image_to(Broken(), as_tensor(gradient_rgb()), format="jpg")


def test_write_image_to_unknown_format():
    with raises_one_line("unknown output format 'gif'.*\\.png"):
        write_image_to(io.BytesIO(), as_tensor(gradient_rgb()), format="gif")


# --------------------------------------------------------------------------- orientation


def test_exif_orientation_is_applied_and_reset(tmp_path):
    # Stored 64 wide x 32 high; red block in the stored top-left, blue elsewhere.
    arr = np.zeros((32, 64, 3), np.uint8)
    arr[:, :] = (0, 0, 255)
    arr[:16, :16] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    exif[0x010F] = "TestCam"  # Make: must survive
    src = tmp_path / "rotated.jpg"
    Image.fromarray(arr).save(src, exif=exif.tobytes(), quality=95)

    photo = read_image(src)
    assert photo.rgb.shape == (3, 64, 32)  # H and W swapped
    red = torch.tensor([1.0, 0.0, 0.0])
    blue = torch.tensor([0.0, 0.0, 1.0])
    # Rotating clockwise moves the stored top-left corner to the top-right.
    assert torch.allclose(photo.rgb[:, 8, 24], red, atol=0.1)
    assert torch.allclose(photo.rgb[:, 8, 8], blue, atol=0.1)
    assert torch.allclose(photo.rgb[:, 56, 24], blue, atol=0.1)

    parsed = Image.Exif()
    parsed.load(photo.exif)
    assert parsed[0x0112] == 1
    assert parsed[0x010F] == "TestCam"

    # Written back, the output is upright for every viewer and keeps the other tags.
    out = tmp_path / "out.jpg"
    write_image(out, photo.rgb, exif=photo.exif)
    with Image.open(out) as img:
        assert img.size == (32, 64)
        assert img.getexif()[0x0112] == 1
        assert img.getexif()[0x010F] == "TestCam"


def test_exif_sub_ifd_survives_orientation_reset(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 8
    exif.get_ifd(0x8769)[0x9003] = "2020:01:01 00:00:00"  # DateTimeOriginal
    src = tmp_path / "dated.jpg"
    Image.fromarray(gradient_rgb()).save(src, exif=exif.tobytes())
    parsed = Image.Exif()
    parsed.load(read_image(src).exif)
    assert parsed[0x0112] == 1
    assert parsed.get_ifd(0x8769)[0x9003] == "2020:01:01 00:00:00"


def test_exif_without_orientation_is_kept_verbatim(tmp_path):
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    src = tmp_path / "plain.jpg"
    Image.fromarray(gradient_rgb()).save(src, exif=exif.tobytes())
    with Image.open(src) as img:
        raw = img.info["exif"]
    assert read_image(src).exif == raw


def test_unparseable_exif_is_dropped(tmp_path):
    src = tmp_path / "junk.jpg"
    Image.fromarray(gradient_rgb()).save(src, exif=b"Exif\x00\x00not a tiff header at all")
    photo = read_image(src)
    assert photo.exif is None
    assert photo.rgb.shape == (3, 32, 48)


# --------------------------------------------------------------------------- modes


def test_grayscale_L(tmp_path):
    grey = np.arange(32 * 48, dtype=np.uint32).reshape(32, 48) % 256
    src = tmp_path / "grey.png"
    Image.fromarray(grey.astype(np.uint8), mode="L").save(src)
    photo = read_image(src)
    assert photo.rgb.shape == (3, 32, 48)
    assert photo.alpha is None
    expected = torch.from_numpy(grey.astype(np.float32) / 255)
    for c in range(3):
        assert torch.equal(photo.rgb[c], expected)


def test_mode_1(tmp_path):
    src = tmp_path / "bw.png"
    img = Image.new("1", (8, 4), 0)
    img.putpixel((3, 2), 1)
    img.save(src)
    photo = read_image(src)
    assert photo.rgb[:, 2, 3].tolist() == [1.0, 1.0, 1.0]
    assert photo.rgb[:, 0, 0].tolist() == [0.0, 0.0, 0.0]


def test_grayscale_LA_keeps_alpha(tmp_path):
    grey = Image.new("L", (10, 6), 200)
    alpha = Image.fromarray(np.tile(np.arange(10, dtype=np.uint8) * 25, (6, 1)), mode="L")
    img = Image.merge("LA", (grey, alpha))
    src = tmp_path / "la.png"
    img.save(src)
    photo = read_image(src)
    assert photo.alpha is not None and photo.alpha.shape == (1, 6, 10)
    assert torch.allclose(photo.rgb, torch.full((3, 6, 10), 200 / 255))
    expected_alpha = torch.from_numpy(np.asarray(alpha).astype(np.float32) / 255)
    assert torch.equal(photo.alpha[0], expected_alpha)


def test_palette_without_transparency(tmp_path):
    img = Image.fromarray(gradient_rgb()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    src = tmp_path / "pal.png"
    img.save(src)
    photo = read_image(src)
    assert photo.alpha is None
    expected = as_tensor(np.asarray(img.convert("RGB")))
    assert torch.equal(photo.rgb, expected)


def test_palette_with_transparency(tmp_path):
    img = Image.new("P", (6, 4), 0)
    img.putpalette([255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 6))
    img.putpixel((1, 1), 1)
    src = tmp_path / "pal_t.png"
    img.save(src, transparency=0)
    photo = read_image(src)
    assert photo.alpha is not None and photo.alpha.shape == (1, 4, 6)
    assert photo.alpha[0, 1, 1] == 1.0
    assert photo.alpha[0, 0, 0] == 0.0
    assert photo.rgb[:, 1, 1].tolist() == [0.0, 1.0, 0.0]


@pytest.mark.parametrize(
    "mode, colour, key", [("L", 7, 7), ("RGB", (1, 2, 3), (1, 2, 3))]
)
def test_colour_key_transparency_becomes_alpha(tmp_path, mode, colour, key):
    img = Image.new(mode, (4, 2), colour)
    img.putpixel((0, 0), 200 if mode == "L" else (200, 200, 200))
    src = tmp_path / "keyed.png"
    img.save(src, transparency=key)
    photo = read_image(src)
    assert photo.alpha is not None
    assert photo.alpha[0, 0, 0] == 1.0 and photo.alpha[0, 1, 1] == 0.0


def test_cmyk_jpeg(tmp_path):
    src = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(src, quality=95)  # pure red ink mix
    photo = read_image(src)
    assert photo.rgb.shape == (3, 16, 16)
    assert torch.allclose(photo.rgb.mean(dim=(1, 2)), torch.tensor([1.0, 0.0, 0.0]), atol=0.05)
    assert photo.icc_profile is None


def test_cmyk_with_unusable_profile_falls_back(tmp_path):
    # An RGB profile on CMYK data cannot drive a colour-managed conversion.
    src = tmp_path / "cmyk_icc.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(src, icc_profile=srgb_profile())
    photo = read_image(src)
    assert torch.allclose(photo.rgb.mean(dim=(1, 2)), torch.tensor([1.0, 0.0, 0.0]), atol=0.05)
    assert photo.icc_profile is None


def test_16_bit_png_keeps_precision(tmp_path):
    values = (np.arange(32 * 48).reshape(32, 48) * 37 + 1000).astype(np.uint16)
    values[0, :3] = [1000, 1001, 1002]  # one 8-bit step apart would be 256
    src = tmp_path / "deep.png"
    Image.fromarray(values).save(src)
    with Image.open(src) as img:
        assert img.mode.startswith("I")
    photo = read_image(src)
    expected = torch.from_numpy(values.astype(np.float32) / 65535)
    assert torch.allclose(photo.rgb[0], expected, atol=1e-7)
    assert torch.equal(photo.rgb[0], photo.rgb[2])
    # Neighbouring 16-bit values that share one 8-bit value stay distinct.
    assert photo.rgb[0, 0, 0] != photo.rgb[0, 0, 1]
    assert (values[0, 0] >> 8) == (values[0, 1] >> 8)


def test_an_8_bit_photo_read_as_arrays_stays_8_bit_and_a_16_bit_one_float(tmp_path):
    """The ONNX Runtime path takes an 8-bit photo's own planes (no float copy of a whole photo);
    tensors, and a deeper photo's arrays, are floats in [0, 1] as before."""
    rgb = np.random.default_rng(3).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "p.png")
    planes = read_image(tmp_path / "p.png", arrays=True).rgb
    assert planes.dtype == np.uint8 and np.array_equal(planes, rgb.transpose(2, 0, 1))
    tensor = read_image(tmp_path / "p.png").rgb
    assert tensor.dtype == torch.float32 and torch.equal(tensor, torch.from_numpy(rgb.transpose(2, 0, 1) / np.float32(255)))
    Image.fromarray(rgb[..., 0]).convert("P").save(tmp_path / "palette.png")
    assert read_image(tmp_path / "palette.png", arrays=True).rgb.dtype == np.uint8
    Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)).save(tmp_path / "deep.png")
    deep = read_image(tmp_path / "deep.png", arrays=True).rgb
    assert deep.dtype == np.float32 and deep.max() <= 1


def test_8_bit_planes_are_written_as_they_are(tmp_path):
    rgb = np.random.default_rng(4).integers(0, 256, (3, 16, 24), dtype=np.uint8)
    write_image(tmp_path / "o.png", rgb)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o.png")).transpose(2, 0, 1), rgb)
    with pytest.raises(ValueError, match="8-bit planes"):
        write_image(tmp_path / "bad.png", rgb.astype(np.int32))


def test_16_bit_big_endian_tiff(tmp_path):
    values = np.array([[0, 1, 65535, 32768]], dtype=">u2")
    src = tmp_path / "deep.tif"
    Image.frombytes("I;16B", (4, 1), values.tobytes()).save(src)
    photo = read_image(src)
    assert torch.allclose(
        photo.rgb[0, 0], torch.tensor([0, 1, 65535, 32768], dtype=torch.float32) / 65535
    )


def test_float_tiff_is_clamped(tmp_path):
    values = np.array([[-1.0, 0.25, 0.5, 3.0]], dtype=np.float32)
    src = tmp_path / "float.tif"
    Image.fromarray(values, mode="F").save(src)
    photo = read_image(src)
    assert photo.rgb[0, 0].tolist() == [0.0, 0.25, 0.5, 1.0]


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_rgba_alpha_survives_read_write_read(tmp_path, ext):
    arr = np.dstack([gradient_rgb(), np.tile(np.arange(48, dtype=np.uint8) * 5, (32, 1))])
    src = tmp_path / f"in{ext}"
    Image.fromarray(arr).save(src)
    photo = read_image(src)
    assert photo.alpha is not None
    out = tmp_path / f"out{ext}"
    write_image(out, photo.rgb, alpha=photo.alpha)
    with Image.open(out) as img:
        assert img.mode == "RGBA"
        assert np.array_equal(np.asarray(img), arr)
    again = read_image(out)
    assert torch.equal(again.alpha, photo.alpha)
    assert torch.equal(again.rgb, photo.rgb)


def test_rgba_webp_keeps_alpha(tmp_path):
    alpha = torch.zeros(1, 32, 48)
    alpha[:, :, 24:] = 1.0
    out = tmp_path / "out.webp"
    write_image(out, as_tensor(gradient_rgb()), alpha=alpha)
    photo = read_image(out)
    assert photo.alpha is not None
    assert (photo.alpha - alpha).abs().max() < 0.02


@pytest.mark.parametrize("ext", [".jpg", ".bmp"])
def test_alpha_dropped_where_unsupported(tmp_path, ext):
    out = tmp_path / f"out{ext}"
    write_image(out, as_tensor(gradient_rgb()), alpha=torch.zeros(1, 32, 48))
    with Image.open(out) as img:
        assert img.mode == "RGB"


def test_alpha_shape_mismatch_is_a_bug_not_user_error(tmp_path):
    with pytest.raises(ValueError):
        write_image(tmp_path / "x.png", as_tensor(gradient_rgb()), alpha=torch.zeros(1, 4, 4))


# --------------------------------------------------------------------------- metadata


@pytest.mark.parametrize("src_ext", [".png", ".jpg", ".webp", ".tif"])
@pytest.mark.parametrize("out_ext", [".png", ".jpg", ".webp", ".tif"])
def test_icc_profile_kept(tmp_path, src_ext, out_ext):
    icc = srgb_profile()
    src = tmp_path / f"in{src_ext}"
    Image.fromarray(gradient_rgb()).save(src, icc_profile=icc)
    photo = read_image(src)
    assert photo.icc_profile == icc
    out = tmp_path / f"out{out_ext}"
    write_image(out, photo.rgb, icc_profile=photo.icc_profile)
    with Image.open(out) as img:
        assert img.info.get("icc_profile") == icc


def test_non_rgb_icc_profile_is_dropped(tmp_path):
    fake_grey = bytearray(srgb_profile())
    fake_grey[16:20] = b"GRAY"
    src = tmp_path / "grey_icc.png"
    Image.new("L", (4, 4), 10).save(src, icc_profile=bytes(fake_grey))
    assert read_image(src).icc_profile is None


@pytest.mark.parametrize("ext", [".png", ".webp", ".jpg", ".tif"])
def test_exif_written(tmp_path, ext):
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    out = tmp_path / f"out{ext}"
    write_image(out, as_tensor(gradient_rgb()), exif=exif.tobytes())
    with Image.open(out) as img:
        assert img.getexif()[0x010F] == "TestCam"


def test_metadata_silently_skipped_for_bmp(tmp_path):
    out = tmp_path / "out.bmp"
    write_image(out, as_tensor(gradient_rgb()), icc_profile=srgb_profile(), exif=b"Exif\x00\x00")
    assert read_image(out).rgb.shape == (3, 32, 48)


# --------------------------------------------------------------------------- read errors


def test_missing_file(tmp_path):
    with raises_one_line(r"nope\.jpg: no such file"):
        read_image(tmp_path / "nope.jpg")


def test_missing_parent_is_not_a_directory(tmp_path):
    (tmp_path / "file").write_bytes(b"x")
    with raises_one_line("no such file"):
        read_image(tmp_path / "file" / "photo.jpg")


def test_directory(tmp_path):
    (tmp_path / "dir.jpg").mkdir()
    with raises_one_line(r"dir\.jpg: is a directory"):
        read_image(tmp_path / "dir.jpg")


@pytest.mark.skipif(IS_ROOT, reason="root ignores file permissions")
def test_permission_denied(tmp_path):
    src = tmp_path / "secret.png"
    Image.fromarray(gradient_rgb()).save(src)
    src.chmod(0)
    try:
        with raises_one_line(r"secret\.png: permission denied"):
            read_image(src)
    finally:
        src.chmod(0o600)


def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with raises_one_line(r"empty\.png: file is empty \(0 bytes\)"):
        read_image(tmp_path / "empty.png")


def test_empty_stream_uses_name():
    with raises_one_line("<stdin>: input is empty"):
        read_image(io.BytesIO(b""), name="<stdin>")


def test_text_file_named_jpg(tmp_path):
    (tmp_path / "notes.jpg").write_text("this is not a picture\nsecond line\n")
    with raises_one_line(r"notes\.jpg: not a readable image"):
        read_image(tmp_path / "notes.jpg")


def test_garbage_stream_uses_name():
    with raises_one_line("<stdin>: not a readable image"):
        read_image(io.BytesIO(b"garbage" * 10), name="<stdin>")


def test_truncated_jpeg(tmp_path):
    src = tmp_path / "full.jpg"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(src, quality=90)
    data = src.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    with raises_one_line(r"cut\.jpg: image data is truncated or corrupt"):
        read_image(cut)
    assert cut.read_bytes() == data[: len(data) // 2]  # the input is never touched


def test_truncated_png(tmp_path):
    src = tmp_path / "full.png"
    rng = np.random.default_rng(2)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(src)
    cut = tmp_path / "cut.png"
    cut.write_bytes(src.read_bytes()[:2000])
    with raises_one_line(r"cut\.png: image data is truncated or corrupt"):
        read_image(cut)


def test_decompression_bomb_small_limit(tmp_path):
    src = tmp_path / "big.png"
    Image.fromarray(gradient_rgb(48, 32)).save(src)  # 1536 pixels
    with raises_one_line(
        r"big\.png: 48x32 = 1536 pixels is over the 1000 pixels safety limit "
        r"\(decompression-bomb guard\); pass --max-pixels 0 to lift it"
    ):
        read_image(src, max_pixels=1000)
    assert read_image(src, max_pixels=1536).rgb.shape == (3, 32, 48)
    assert read_image(src, max_pixels=0).rgb.shape == (3, 32, 48)
    assert read_image(src, max_pixels=None).rgb.shape == (3, 32, 48)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge size but holds almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )


def test_decompression_bomb_default_limit_checked_before_decoding(monkeypatch):
    # 400 Mpx claimed by a ~60-byte file: refused by our guard, before any allocation.
    # With Pillow's own guard off, as the CLI runs, the message is ours.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    bomb = _png_header_only(20_000, 20_000)
    with raises_one_line(
        r"<stdin>: 20000x20000 = 400\.0 Mpx is over the 89\.5 Mpx safety limit"
    ):
        read_image(io.BytesIO(bomb), name="<stdin>")
    # With Pillow's guard left as a library user's process has it, Pillow refuses it first.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", DEFAULT_MAX_PIXELS)
    with raises_one_line(r"<stdin>: rejected as a decompression bomb"):
        read_image(io.BytesIO(bomb), name="<stdin>")


def test_training_loader_has_the_bomb_guard_too(tmp_path, monkeypatch):
    from stylize.train.data import ContentPhotos

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # as under the CLI: our guard is the only one
    (tmp_path / "bomb.png").write_bytes(_png_header_only(20_000, 20_000))
    photos = ContentPhotos(tmp_path, image_size=32, batch_size=1, style_pool=1, seed=0)
    images, _, skipped = photos[0]  # a photo that cannot be read is skipped with its reason, never decoded
    assert images is None and len(skipped) == 1
    assert re.search(r"bomb\.png: 20000x20000 = 400\.0 Mpx is over the 89\.5 Mpx safety limit", skipped[0])
    assert "\n" not in skipped[0]


def test_pillow_own_bomb_guard_cannot_traceback(tmp_path, monkeypatch):
    # Should anything re-enable Pillow's global guard, its error still becomes ours.
    src = tmp_path / "img.png"
    Image.fromarray(gradient_rgb()).save(src)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)
    with raises_one_line(r"img\.png: rejected as a decompression bomb"):
        read_image(src, max_pixels=0)


def test_negative_max_pixels(tmp_path):
    with raises_one_line("max pixels must be 0"):
        read_image(tmp_path / "x.png", max_pixels=-1)


# --------------------------------------------------------------------------- write errors


def test_unknown_output_extension(tmp_path):
    with raises_one_line(r"out\.gif.*'\.gif'.*\.bmp, \.jpeg, \.jpg, \.png, \.tif, \.tiff, \.webp"):
        write_image(tmp_path / "out.gif", as_tensor(gradient_rgb()))
    with raises_one_line("no extension"):
        write_image(tmp_path / "out", as_tensor(gradient_rgb()))
    assert dir_listing(tmp_path) == []


def test_bad_quality(tmp_path):
    with raises_one_line("quality must be between 1 and 100"):
        write_image(tmp_path / "out.jpg", as_tensor(gradient_rgb()), quality=0)


def test_missing_output_directory(tmp_path):
    with raises_one_line("directory .*missing does not exist"):
        write_image(tmp_path / "missing" / "out.png", as_tensor(gradient_rgb()))


def test_output_parent_is_a_regular_file(tmp_path):
    (tmp_path / "file").write_bytes(b"keep me")
    with raises_one_line(r"file is not a directory"):
        write_image(tmp_path / "file" / "out.png", as_tensor(gradient_rgb()))
    assert (tmp_path / "file").read_bytes() == b"keep me"


@pytest.mark.skipif(IS_ROOT, reason="root ignores directory permissions")
def test_unwritable_output_directory(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with raises_one_line(r"permission denied in directory .*locked"):
            write_image(locked / "out.png", as_tensor(gradient_rgb()))
    finally:
        locked.chmod(0o700)
    assert dir_listing(locked) == []


def test_output_is_a_directory(tmp_path):
    (tmp_path / "out.png").mkdir()
    with raises_one_line(r"out\.png: it is a directory"):
        write_image(tmp_path / "out.png", as_tensor(gradient_rgb()))
    assert dir_listing(tmp_path) == ["out.png"]


# --------------------------------------------------------------------------- atomicity


def _save_that_fails_midway(exc: BaseException):
    def save(self, fp, *args, **kwargs):
        fp.write(b"partial garbage")
        raise exc

    return save


@pytest.mark.parametrize(
    "exc, expected",
    [
        (OSError("encoder error -2"), StylizeError),  # a Pillow encoder failure
        (OSError(errno.ENOSPC, "No space left on device"), StylizeError),
        (KeyboardInterrupt(), KeyboardInterrupt),
    ],
)
def test_failed_write_leaves_destination_and_no_temp(tmp_path, monkeypatch, exc, expected):
    dest = tmp_path / "out.png"
    dest.write_bytes(b"previous result")
    monkeypatch.setattr(Image.Image, "save", _save_that_fails_midway(exc))
    with pytest.raises(expected) as info:
        write_image(dest, as_tensor(gradient_rgb()))
    if expected is StylizeError:
        assert "\n" not in str(info.value)
        assert "out.png" in str(info.value)
    assert dest.read_bytes() == b"previous result"
    assert dir_listing(tmp_path) == ["out.png"]


def test_failed_replace_removes_temp(tmp_path, monkeypatch):
    dest = tmp_path / "out.png"
    dest.write_bytes(b"previous result")

    def failing_replace(src, dst):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(imageio.os, "replace", failing_replace)
    with raises_one_line("Input/output error"):
        write_image(dest, as_tensor(gradient_rgb()))
    assert dest.read_bytes() == b"previous result"
    assert dir_listing(tmp_path) == ["out.png"]


def test_successful_overwrite_is_complete_and_leaves_no_temp(tmp_path):
    dest = tmp_path / "out.png"
    dest.write_bytes(b"previous result")
    write_image(dest, as_tensor(gradient_rgb()))
    assert dir_listing(tmp_path) == ["out.png"]
    assert torch.equal(read_image(dest).rgb, as_tensor(gradient_rgb()))


def test_relative_output_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_image(Path("rel.png"), as_tensor(gradient_rgb()))
    assert dir_listing(tmp_path) == ["rel.png"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_output_permissions(tmp_path):
    old_umask = os.umask(0o022)
    try:
        fresh = tmp_path / "fresh.png"
        write_image(fresh, as_tensor(gradient_rgb()))
        assert fresh.stat().st_mode & 0o777 == 0o644  # like any new file, not 0o600
        kept = tmp_path / "kept.png"
        kept.write_bytes(b"old")
        kept.chmod(0o640)
        write_image(kept, as_tensor(gradient_rgb()))
        assert kept.stat().st_mode & 0o777 == 0o640  # replacing keeps the mode
    finally:
        os.umask(old_umask)


def test_photo_dataclass_defaults():
    photo = Photo(rgb=torch.zeros(3, 1, 1))
    assert photo.alpha is None and photo.icc_profile is None
    assert photo.exif is None and photo.format is None
