"""Writing images without losing any: encoded in memory, written atomically.

Outputs are encoded in memory and written with :func:`stylize.io.atomic.write_atomically`,
so an existing file is either left untouched or replaced by a complete new one, and a
full disk is an error, not a short file. The writers take torch tensors or numpy arrays
(:mod:`stylize.io.images` describes the pixels); they never import torch.
"""

from __future__ import annotations

import errno
import io
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
from PIL import Image

from ..config import DEFAULT_QUALITY, check_quality
from ..errors import StylizeError, one_line, os_reason
from .atomic import write_atomically, write_failure
from .formats import ALPHA_FORMATS, EXIF_FORMATS, ICC_FORMATS, QUALITY_FORMATS, resolve_format
from .pixels import as_array, tensor_to_pil, to_uint8

if TYPE_CHECKING:
    import torch


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
    """Write ``rgb`` (float ``(3, H, W)`` in ``[0, 1]``, or 8-bit planes) to ``path``, atomically; whether it did.

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
        raise StylizeError(f"cannot write image to {name}: {os_reason(exc)}") from exc


def _write_whole(stream: BinaryIO, data: bytes) -> None:
    """Write every byte: a raw stream (stdout is one) may take part of them, as a pipe whose
    reader has gone does, and only the next call then fails (``EPIPE``)."""
    view = memoryview(data)
    while view:
        count = stream.write(view)
        if not count:
            raise OSError(errno.EIO, "the stream took no more bytes")
        view = view[count:]


def _prepare(rgb: torch.Tensor | np.ndarray, alpha: torch.Tensor | np.ndarray | None, fmt: str) -> Image.Image:
    """Build the Pillow image to encode, attaching alpha when ``fmt`` can hold it."""
    rgb = as_array(rgb)
    if not (np.issubdtype(rgb.dtype, np.floating) or rgb.dtype == np.uint8):
        raise ValueError(f"expected a float tensor in [0, 1] or 8-bit planes, got dtype {rgb.dtype}")
    img = tensor_to_pil(rgb)
    if alpha is not None and fmt in ALPHA_FORMATS:
        if alpha.ndim == 3 and alpha.shape[0] == 1:
            alpha = alpha[0]
        if tuple(alpha.shape) != tuple(rgb.shape[1:]):
            raise ValueError(
                f"alpha of shape {tuple(alpha.shape)} does not match image {tuple(rgb.shape)}"
            )
        img.putalpha(Image.fromarray(to_uint8(alpha)))
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
        raise StylizeError(f"cannot encode {label} as {fmt}: {one_line(exc)}") from exc
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
    return f"cannot write {path} in directory {directory}: {os_reason(exc)}"
