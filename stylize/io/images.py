"""Reading and writing photos without surprises.

Everything a user can get wrong here (a missing file, a text file named ``.jpg``, a
truncated download, a 1-gigapixel "bomb", an unwritable output folder) becomes a
one-line :class:`~stylize.errors.StylizeError` that names the file.  Nothing is ever
lost: inputs are only read, and outputs are encoded in memory and written with
:func:`stylize.io.atomic.write_atomically`, so an existing file is either left untouched
or replaced by a complete new one, and a full disk is an error, not a short file.

Pixels travel as float32 tensors in ``[0, 1]``: colour as ``(3, H, W)`` and, when the
source has one, alpha as a separate ``(1, H, W)`` tensor, because the style network
only ever sees colour while the alpha channel must survive to the output. With
``read_image(..., arrays=True)`` they are numpy arrays of the same shapes instead, and
the writers take either: the ONNX Runtime path (:mod:`stylize.apply.onnx_backend`) never
imports PyTorch, which is imported here only when tensors are asked for.
"""

from __future__ import annotations

import dataclasses
import errno
import io
import stat
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..config import DEFAULT_MAX_PIXELS, DEFAULT_QUALITY, check_max_pixels, check_quality
from ..errors import StylizeError
from .atomic import write_atomically, write_failure
from .formats import ALPHA_FORMATS, EXIF_FORMATS, EXTENSION_LIST, ICC_FORMATS, QUALITY_FORMATS, resolve_format

if TYPE_CHECKING:
    import torch

try:
    from PIL import ImageCms
except ImportError:  # Pillow built without littlecms: CMYK falls back to a naive conversion.
    ImageCms = None  # type: ignore[assignment]

__all__ = [
    "Photo",
    "check_pixels",
    "pil_to_tensor",
    "read_image",
    "resize_long_side",
    "tensor_to_pil",
    "write_image",
    "write_image_to",
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
    so their extra precision survives.  ``alpha`` is float32 ``(1, H, W)`` or ``None``
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


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """Convert a Pillow image to a float32 ``(3, H, W)`` tensor in ``[0, 1]``.

    Any mode is accepted and converted to 8-bit RGB first (alpha is discarded); use
    :func:`read_image` when 16-bit precision or alpha matter.
    """
    import torch

    return torch.from_numpy(_pil_to_array(img))


def _pil_to_array(img: Image.Image) -> np.ndarray:
    """:func:`pil_to_tensor` as a numpy array."""
    if img.mode != "RGB":
        img = img.convert("RGB")
    return _uint8_to_array(np.asarray(img))


def tensor_to_pil(t: torch.Tensor | np.ndarray) -> Image.Image:
    """Convert a float ``(3, H, W)`` tensor (or array) in ``[0, 1]`` to an 8-bit RGB Pillow image.

    Values are clamped (networks overshoot slightly) and NaNs become 0, then rounded
    rather than truncated so that a read/write round trip is lossless.
    """
    if t.ndim != 3 or t.shape[0] != 3:
        raise ValueError(f"expected an RGB tensor of shape (3, H, W), got {tuple(t.shape)}")
    return Image.fromarray(np.ascontiguousarray(_to_uint8(t).transpose(1, 2, 0)))


def resize_long_side(image: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (C,H,W) so its long side is ``size``, keeping the aspect ratio (antialiased)."""
    import torch.nn.functional as F

    h, w = image.shape[-2:]
    scale = size / max(h, w)
    new = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(image[None], size=new, mode="bilinear", antialias=True, align_corners=False)[0].clamp(0, 1)


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
            raise StylizeError(f"{label}: cannot read: {_reason(exc)}") from exc
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


def write_image(
    path: str | Path,
    rgb: torch.Tensor,
    *,
    alpha: torch.Tensor | None = None,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
    quality: int = DEFAULT_QUALITY,
    format: str | None = None,
    overwrite: bool = True,
) -> bool:
    """Write ``rgb`` (float ``(3, H, W)`` in ``[0, 1]``) to ``path``, atomically; whether it did.

    The format comes from the extension unless ``format`` is given (``"jpg"``,
    ``"png"``, ...).  ``alpha`` is kept for PNG, WebP and TIFF and dropped for JPEG and
    BMP, which cannot hold it (the colour is written as is, not composited).  ICC and
    EXIF are kept where the format can carry them.  ``quality`` (1-100) applies to JPEG
    and WebP.  The file is encoded in memory and put in place only once completely on
    disk, so a crash, a full disk or an encoder error never leaves a half-written or
    truncated file.  Without ``overwrite`` an existing ``path`` is kept, even one that
    appears while encoding (another run finished it first), and ``False`` is returned.
    """
    path = Path(path)
    data = _encode(rgb, alpha, resolve_format(path, format), quality, icc_profile, exif, path)
    try:
        return write_atomically(path, data, replace=overwrite)
    except IsADirectoryError as exc:
        raise StylizeError(f"cannot write {path}: it is a directory") from exc
    except (FileNotFoundError, NotADirectoryError, PermissionError) as exc:
        raise StylizeError(_directory_error(path, exc)) from exc
    except OSError as exc:  # disk full, quota, I/O error...
        raise StylizeError(f"cannot write {path}: {write_failure(exc, path, len(data))}") from exc


def write_image_to(
    stream: BinaryIO,
    rgb: torch.Tensor,
    *,
    alpha: torch.Tensor | None = None,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
    quality: int = DEFAULT_QUALITY,
    format: str,
    name: str = "<stdout>",
) -> None:
    """Encode ``rgb`` as ``format`` onto a binary stream such as ``sys.stdout.buffer``.

    Same options as :func:`write_image`; the format must be given since a stream has no
    extension.  The image is encoded in memory first, so a pipe receives either the
    whole file or, if the reader goes away, nothing more; ``name`` labels the stream in
    error messages.
    """
    data = _encode(rgb, alpha, resolve_format(None, format), quality, icc_profile, exif, name)
    try:
        _write_whole(stream, data)
        stream.flush()
    except OSError as exc:
        raise StylizeError(f"cannot write image to {name}: {_reason(exc)}") from exc


def _write_whole(stream: BinaryIO, data: bytes) -> None:
    """Write every byte: a raw stream (stdout is one) may take part of them, as a pipe whose
    reader has gone does, and only the next call then fails (``EPIPE``)."""
    view = memoryview(data)
    while view:
        count = stream.write(view)
        if not count:
            raise OSError(errno.EIO, "the stream took no more bytes")
        view = view[count:]


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
        raise StylizeError(f"{label}: cannot open: {_reason(exc)}") from exc
    try:
        st = os.fstat(fp.fileno())
    except OSError as exc:
        fp.close()
        raise StylizeError(f"{label}: cannot open: {_reason(exc)}") from exc
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
            f"{label}: rejected as a decompression bomb ({_one_line(exc)})"
        ) from exc
    except CORRUPT_DATA_ERRORS as exc:
        raise StylizeError(f"{label}: image header is corrupt ({_one_line(exc)})") from exc
    with img:
        check_pixels(img, label, max_pixels)
        source_format = img.format
        try:
            # Force the full decode here: Pillow is lazy, and a truncated file must fail
            # now with a clear message rather than later inside the model.
            img.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise StylizeError(
                f"{label}: rejected as a decompression bomb ({_one_line(exc)})"
            ) from exc
        except CORRUPT_DATA_ERRORS as exc:
            raise StylizeError(
                f"{label}: image data is truncated or corrupt ({_one_line(exc)})"
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
    """``photo`` with its numpy pixels as torch tensors (sharing memory)."""
    import torch

    alpha = None if photo.alpha is None else torch.from_numpy(photo.alpha)
    return dataclasses.replace(photo, rgb=torch.from_numpy(photo.rgb), alpha=alpha)


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
        return _pil_to_array(rgb_img), None, rgb_icc
    try:
        if mode in _ALPHA_MODES or "transparency" in img.info:
            rgba = _uint8_to_array(np.asarray(img.convert("RGBA")))
            return np.ascontiguousarray(rgba[:3]), np.ascontiguousarray(rgba[3:]), _rgb_profile(icc_profile)
        return _pil_to_array(img), None, _rgb_profile(icc_profile)
    except ValueError as exc:  # e.g. LAB or HSV, which Pillow cannot turn into RGB
        raise StylizeError(f"{label}: unsupported colour mode {mode}") from exc


def _cmyk_to_rgb(img: Image.Image, icc_profile: bytes | None) -> tuple[Image.Image, bytes | None]:
    """Convert CMYK to RGB, colour-managed when the file says how its inks look.

    With an embedded CMYK profile and littlecms available the result is real sRGB and
    gets an sRGB profile; otherwise Pillow's naive formula is used and the CMYK profile
    is dropped, since it would misdescribe RGB pixels.
    """
    if icc_profile is not None and ImageCms is not None:
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


def _uint8_to_array(arr: np.ndarray) -> np.ndarray:
    """(H, W, C) uint8 array -> float32 (C, H, W) array in [0, 1]."""
    return np.ascontiguousarray((arr.astype(np.float32) / 255.0).transpose(2, 0, 1))


# --------------------------------------------------------------------------- writing


def _prepare(rgb: torch.Tensor | np.ndarray, alpha: torch.Tensor | np.ndarray | None, fmt: str) -> Image.Image:
    """Build the Pillow image to encode, attaching alpha when ``fmt`` can hold it."""
    rgb = _as_array(rgb)
    if not np.issubdtype(rgb.dtype, np.floating):
        raise ValueError(f"expected a float tensor in [0, 1], got dtype {rgb.dtype}")
    img = tensor_to_pil(rgb)
    if alpha is not None and fmt in ALPHA_FORMATS:
        if alpha.ndim == 3 and alpha.shape[0] == 1:
            alpha = alpha[0]
        if tuple(alpha.shape) != tuple(rgb.shape[1:]):
            raise ValueError(
                f"alpha of shape {tuple(alpha.shape)} does not match image {tuple(rgb.shape)}"
            )
        img.putalpha(Image.fromarray(_to_uint8(alpha)))
    return img


def _save_options(
    fmt: str, quality: int, icc_profile: bytes | None, exif: bytes | None
) -> dict[str, object]:
    """Keyword arguments for ``Image.save``, limited to what ``fmt`` supports."""
    check_quality(quality)
    options: dict[str, object] = {}
    if fmt in QUALITY_FORMATS:
        options["quality"] = quality
    if icc_profile and fmt in ICC_FORMATS:
        options["icc_profile"] = icc_profile
    if exif and fmt in EXIF_FORMATS:
        options["exif"] = exif
    return options


def _encode(
    rgb: torch.Tensor,
    alpha: torch.Tensor | None,
    fmt: str,
    quality: int,
    icc_profile: bytes | None,
    exif: bytes | None,
    label: str | Path,
) -> bytes:
    """The one place images are encoded, in memory, shared by file and stream output.

    In memory because Pillow's encoders write files with unchecked ``write()`` calls: on
    a full disk they produce a short file without an error.
    """
    img = _prepare(rgb, alpha, fmt)
    options = _save_options(fmt, quality, icc_profile, exif)
    buffer = io.BytesIO()
    try:
        img.save(buffer, format=fmt, **options)
    except (ValueError, OSError) as exc:
        raise StylizeError(f"cannot encode {label} as {fmt}: {_one_line(exc)}") from exc
    return buffer.getvalue()


def _directory_error(path: Path, exc: OSError) -> str:
    """One line saying why nothing can be created in ``path``'s directory."""
    directory = path.parent
    if isinstance(exc, FileNotFoundError):
        return f"cannot write {path}: directory {directory} does not exist"
    if isinstance(exc, NotADirectoryError) or exc.errno == errno.ENOTDIR:
        return f"cannot write {path}: {directory} is not a directory"
    if isinstance(exc, PermissionError):
        return f"cannot write {path}: permission denied in directory {directory}"
    return f"cannot write {path} in directory {directory}: {_reason(exc)}"


def _as_array(pixels: Any) -> np.ndarray:
    """A numpy array of ``pixels``: a torch tensor (any device) is copied to the CPU, floats as float32."""
    if hasattr(pixels, "detach"):  # duck-typed: importing torch here would defeat the torch-free path
        pixels = pixels.detach()
        return (pixels.float() if pixels.is_floating_point() else pixels).cpu().numpy()
    return np.asarray(pixels)


def _to_uint8(pixels: Any) -> np.ndarray:
    """Float pixels in [0, 1] -> uint8, clamped, NaN-safe and rounded (half to even)."""
    a = np.nan_to_num(_as_array(pixels).astype(np.float32, copy=False), nan=0.0)
    return np.round(np.clip(a, 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)


# --------------------------------------------------------------------------- messages


def _mpx(pixels: int) -> str:
    """Human-readable pixel count: "89.5 Mpx" for photos, exact for tiny limits."""
    return f"{pixels / 1e6:.1f} Mpx" if pixels >= 100_000 else f"{pixels} pixels"


def _one_line(exc: BaseException) -> str:
    """An exception's text squeezed onto one line (Pillow's sometimes span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _reason(exc: OSError) -> str:
    """The OS's short reason ("No space left on device") without errno noise."""
    return exc.strerror or _one_line(exc)
