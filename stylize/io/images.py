"""Reading photos without surprises, and the pixels they become.

Everything a user can get wrong here (a missing file, a text file named ``.jpg``, a
truncated download, a 1-gigapixel "bomb") becomes a one-line
:class:`~stylize.errors.StylizeError` that names the file; inputs are only read.
Writing is :mod:`stylize.io.encode`.

Pixels travel as float32 tensors in ``[0, 1]``: colour as ``(3, H, W)`` and, when the
source has one, alpha as a separate ``(1, H, W)`` tensor, because the style network
only ever sees colour while the alpha channel must survive to the output. With
``read_image(..., arrays=True)`` they are numpy arrays of the same shapes instead, the
colour of an 8-bit source as its ``uint8`` planes (:mod:`stylize.io.pixels`), and the
writers take either: the ONNX Runtime path (:mod:`stylize.apply.onnx_backend`) never
imports PyTorch, which is imported here only when tensors are asked for.
"""

from __future__ import annotations

import dataclasses
import io
import os
import stat
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..config import DEFAULT_MAX_PIXELS, check_max_pixels
from ..errors import StylizeError, one_line, os_reason
from .formats import EXTENSION_LIST
from .pixels import as_float, bands_to_array, bands_to_uint8

if TYPE_CHECKING:
    import torch

__all__ = [
    "Photo",
    "check_pixels",
    "read_image",
]


# Pillow has its own guard, ``PIL.Image.MAX_IMAGE_PIXELS``: a process-wide global that
# cannot be changed per call without racing other threads, so this library leaves it to
# the program that owns the process.  Every open here checks ``max_pixels`` itself, from
# the header, before any pixel is decoded (:func:`check_pixels`); the CLI, which enforces
# ``--max-pixels`` that way, switches Pillow's guard off so that its limit is the only one.

# Modes carrying alpha; palette and L/RGB images may instead have a "transparency"
# entry (PNG tRNS), which convert("RGBA") also honours.
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
_EXIF_ORIENTATION = 0x0112

_MAX_BYTES_PER_PIXEL = 8
_STREAM_MARGIN = 16 * 2**20
_CHUNK = 2**20

# What Pillow's decoders raise on damaged data, besides OSError ("image file is
# truncated"): broken PNG chunks are SyntaxError, short reads EOFError, bad zlib
# streams zlib.error, inconsistent headers ValueError.
CORRUPT_DATA_ERRORS = (OSError, SyntaxError, EOFError, ValueError, zlib.error)


@dataclass
class Photo:
    """A decoded photo, already upright, plus what is needed to write it back faithfully.

    ``rgb`` is float32 ``(3, H, W)`` in ``[0, 1]``; 16-bit sources are divided by 65535
    so their extra precision survives. Read as numpy arrays, an 8-bit source's ``rgb`` is
    its ``uint8`` planes instead (:func:`stylize.io.pixels.as_float` makes them floats).  ``alpha`` is float32 ``(1, H, W)`` or ``None``
    when the source is opaque.  ``icc_profile`` is only kept when it describes RGB data
    (a grey or CMYK profile would be wrong on the RGB output).  ``exif`` has its
    orientation reset to 1, because the pixels have already been rotated.  ``format``
    is Pillow's name for the source format (``"JPEG"``, ``"PNG"``, ...).
    """

    rgb: torch.Tensor | np.ndarray
    alpha: torch.Tensor | np.ndarray | None = None
    icc_profile: bytes | None = None
    exif: bytes | None = None
    format: str | None = None


def read_image(
    source: str | Path | BinaryIO,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    name: str | None = None,
    arrays: bool = False,
) -> Photo:
    """Decode a photo from a path or a binary stream into a :class:`Photo`.

    Reads anything Pillow can (JPEG, PNG, WebP, BMP, TIFF, ...; only the first frame of
    animations and multi-page files).  EXIF orientation is applied so the tensor is
    upright.  ``max_pixels`` (``None`` or 0: no limit) is checked from the header,
    before the pixels are decoded, to stop decompression bombs cheaply.  ``name`` is
    how the source is called in error messages (default: the path, or the stream's
    ``name``, e.g. ``"<stdin>"``).  Every failure is a one-line StylizeError.
    ``arrays=True`` returns numpy arrays instead of tensors (and never imports torch).
    """
    photo = _read_source(source, max_pixels, name)
    return photo if arrays else _as_tensors(photo)


def _read_source(source: str | Path | BinaryIO, max_pixels: int | None, name: str | None) -> Photo:
    """:func:`read_image` with numpy arrays."""
    check_max_pixels(max_pixels)
    if isinstance(source, (str, Path)):
        label = name or str(source)
        with _open_for_reading(Path(source), label) as fp:
            return _read(fp, label, max_pixels)
    label = name or str(getattr(source, "name", None) or "<stream>")
    # Pillow needs to seek, and stdin or a pipe cannot: buffer the bytes, but no more
    # than an image within the pixel limit can take.
    data = _read_stream(source, label, max_stream_bytes(max_pixels))
    if not data.getbuffer().nbytes:
        raise StylizeError(f"{label}: input is empty (0 bytes), expected an image")
    return _read(data, label, max_pixels)


def max_stream_bytes(max_pixels: int | None) -> int | None:
    """The most bytes a file of at most ``max_pixels`` pixels can take (``None``: no limit).

    No supported format stores more than 8 bytes a pixel (16-bit RGBA, uncompressed);
    the margin is for headers and metadata (EXIF, ICC, XMP, thumbnails).
    """
    return max_pixels * _MAX_BYTES_PER_PIXEL + _STREAM_MARGIN if max_pixels else None


def _read_stream(source: BinaryIO, label: str, limit: int | None) -> io.BytesIO:
    """The stream's bytes, read in chunks; refused as soon as they pass ``limit``."""
    buffer = io.BytesIO()
    while True:
        try:
            chunk = source.read(_CHUNK)
        except OSError as exc:
            raise StylizeError(f"{label}: cannot read: {os_reason(exc)}") from exc
        if not chunk:
            break
        buffer.write(chunk)
        if limit is not None and buffer.tell() > limit:
            raise StylizeError(
                f"{label}: more than {limit / 1e6:.0f} MB, more than any image within the "
                "pixel limit takes (decompression-bomb guard); pass --max-pixels 0 to lift it"
            )
    buffer.seek(0)
    return buffer


# --------------------------------------------------------------------------- reading


def _open_for_reading(path: Path, label: str) -> BinaryIO:
    """Open ``path`` for reading, turning each way it can fail into a one-line error."""
    try:
        fp = open(path, "rb")
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise StylizeError(f"{label}: no such file") from exc
    except IsADirectoryError as exc:
        raise StylizeError(f"{label}: is a directory, not an image file") from exc
    except PermissionError as exc:
        raise StylizeError(f"{label}: permission denied") from exc
    except OSError as exc:
        raise StylizeError(f"{label}: cannot open: {os_reason(exc)}") from exc
    try:
        st = os.fstat(fp.fileno())
    except OSError as exc:
        fp.close()
        raise StylizeError(f"{label}: cannot open: {os_reason(exc)}") from exc
    if stat.S_ISDIR(st.st_mode):  # Windows and some filesystems let open() succeed
        fp.close()
        raise StylizeError(f"{label}: is a directory, not an image file")
    if stat.S_ISREG(st.st_mode) and st.st_size == 0:
        fp.close()
        raise StylizeError(f"{label}: file is empty (0 bytes)")
    return fp


def check_pixels(img: Image.Image, label: str, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> None:
    """Refuse an opened (not yet decoded) image over ``max_pixels`` (``None`` or 0: no limit)."""
    width, height = img.size
    if max_pixels and width * height > max_pixels:
        raise StylizeError(
            f"{label}: {width}x{height} = {_mpx(width * height)} is over the "
            f"{_mpx(max_pixels)} safety limit (decompression-bomb guard); "
            "pass --max-pixels 0 to lift it or a larger number"
        )


def _read(fp: BinaryIO, label: str, max_pixels: int | None) -> Photo:
    """Open, size-check, fully decode and convert one image from a seekable stream."""
    try:
        img = Image.open(fp)
    except UnidentifiedImageError as exc:
        raise StylizeError(
            f"{label}: not a readable image (expected one of {EXTENSION_LIST})"
        ) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise StylizeError(
            f"{label}: rejected as a decompression bomb ({one_line(exc)})"
        ) from exc
    except CORRUPT_DATA_ERRORS as exc:
        raise StylizeError(f"{label}: image header is corrupt ({one_line(exc)})") from exc
    with img:
        check_pixels(img, label, max_pixels)
        source_format = img.format
        try:
            # Force the full decode here: Pillow is lazy, and a truncated file must fail
            # now with a clear message rather than later inside the model.
            img.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise StylizeError(
                f"{label}: rejected as a decompression bomb ({one_line(exc)})"
            ) from exc
        except CORRUPT_DATA_ERRORS as exc:
            raise StylizeError(
                f"{label}: image data is truncated or corrupt ({one_line(exc)})"
            ) from exc
        raw_exif = img.info.get("exif") or None
        raw_icc = img.info.get("icc_profile") or None
        ImageOps.exif_transpose(img, in_place=True)
        rgb, alpha, icc_profile = _decode_pixels(img, raw_icc, label)
    return Photo(
        rgb=rgb,
        alpha=alpha,
        icc_profile=icc_profile,
        exif=_upright_exif(raw_exif),
        format=source_format,
    )


def photo_from_pil(img: Image.Image, name: str = "image") -> Photo:
    """An already opened PIL image as an upright :class:`Photo` (for the Python API)."""
    upright = ImageOps.exif_transpose(img)
    rgb, alpha, icc = _decode_pixels(upright, img.info.get("icc_profile"), name)
    return _as_tensors(Photo(rgb=rgb, alpha=alpha, icc_profile=icc))


def _as_tensors(photo: Photo) -> Photo:
    """``photo`` with its numpy pixels as float torch tensors (sharing the float arrays' memory)."""
    import torch

    alpha = None if photo.alpha is None else torch.from_numpy(photo.alpha)
    return dataclasses.replace(photo, rgb=torch.from_numpy(as_float(photo.rgb)), alpha=alpha)


def _decode_pixels(
    img: Image.Image, icc_profile: bytes | None, label: str
) -> tuple[np.ndarray, np.ndarray | None, bytes | None]:
    """Turn a loaded image of any mode into (rgb, alpha, icc profile valid for rgb)."""
    mode = img.mode
    if mode in _SIXTEEN_BIT_MODES:
        # 16-bit greyscale (PNG, TIFF).  Pillow reports some of it as 32-bit "I"; we
        # take that as the same 0..65535 scale, clamping anything outside it.
        grey = np.asarray(img).astype(np.float32) / 65535.0
        return _grey_to_rgb(np.clip(grey, 0.0, 1.0)), None, _rgb_profile(icc_profile)
    if mode == "F":
        # Floating-point TIFFs have no agreed range; [0, 1] is the common convention.
        grey = np.nan_to_num(np.asarray(img, dtype=np.float32), nan=0.0)
        return _grey_to_rgb(np.clip(grey, 0.0, 1.0)), None, _rgb_profile(icc_profile)
    if mode == "CMYK":
        rgb_img, rgb_icc = _cmyk_to_rgb(img, icc_profile)
        return bands_to_uint8(rgb_img), None, rgb_icc
    try:
        if mode in _ALPHA_MODES or "transparency" in img.info:
            rgba = bands_to_array(img.convert("RGBA"))
            return np.ascontiguousarray(rgba[:3]), np.ascontiguousarray(rgba[3:]), _rgb_profile(icc_profile)
        return bands_to_uint8(img if mode == "RGB" else img.convert("RGB")), None, _rgb_profile(icc_profile)
    except ValueError as exc:  # e.g. LAB or HSV, which Pillow cannot turn into RGB
        raise StylizeError(f"{label}: unsupported colour mode {mode}") from exc


def _cmyk_to_rgb(img: Image.Image, icc_profile: bytes | None) -> tuple[Image.Image, bytes | None]:
    """Convert CMYK to RGB, colour-managed when the file says how its inks look.

    With an embedded CMYK profile and littlecms available the result is real sRGB and
    gets an sRGB profile; otherwise Pillow's naive formula is used and the CMYK profile
    is dropped, since it would misdescribe RGB pixels. littlecms is loaded here, for CMYK
    alone: every other photo is read without it.
    """
    if icc_profile is not None:
        try:
            from PIL import ImageCms
        except ImportError:  # Pillow built without littlecms
            return img.convert("RGB"), None
        try:
            srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
            converted = ImageCms.profileToProfile(img, source, srgb, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken or non-CMYK profile: fall back to the naive conversion
        else:
            if converted is not None:
                return converted, srgb.tobytes()
    return img.convert("RGB"), None


def _rgb_profile(icc_profile: bytes | None) -> bytes | None:
    """Keep an ICC profile only if its header says it describes RGB data.

    Bytes 16-19 of an ICC header name the data colour space; a grey profile from an
    "L" image would be wrong, and rejected by some viewers, once the pixels are RGB.
    """
    if icc_profile is not None and icc_profile[16:20] == b"RGB ":
        return icc_profile
    return None


def _upright_exif(raw: bytes | None) -> bytes | None:
    """Return EXIF with the orientation tag reset to 1, since the pixels are now upright.

    Without this a viewer would rotate the already-rotated output a second time.  EXIF
    that Pillow cannot parse is dropped rather than carried: it may hold a stale
    orientation we cannot fix.
    """
    if raw is None:
        return None
    exif = Image.Exif()
    try:
        exif.load(raw)
    except CORRUPT_DATA_ERRORS:
        return None
    if exif.get(_EXIF_ORIENTATION, 1) == 1:
        return raw
    exif[_EXIF_ORIENTATION] = 1
    return exif.tobytes()


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    """Replicate an (H, W) float32 array into a (3, H, W) one."""
    return np.repeat(grey[None].astype(np.float32, copy=False), 3, axis=0)


# --------------------------------------------------------------------------- messages


def _mpx(pixels: int) -> str:
    """Human-readable pixel count: "89.5 Mpx" for photos, exact for tiny limits."""
    return f"{pixels / 1e6:.1f} Mpx" if pixels >= 100_000 else f"{pixels} pixels"
