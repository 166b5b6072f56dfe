"""The image and video formats stylize reads and writes, by file extension: torch-free and Pillow-free.

Small on purpose: the settings (:mod:`stylize.config`) check a ``--format`` against it
before any image library is loaded, and planning an ``apply`` tells a video from a photo
without loading the video module.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import StylizeError

FORMAT_BY_EXTENSION: dict[str, str] = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
"""The image files stylize reads and writes, by lower-case extension, as Pillow names their format."""

#: Lower-case extensions (with the dot) that input discovery treats as images.
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(FORMAT_BY_EXTENSION)

EXTENSION_LIST = ", ".join(sorted(SUPPORTED_EXTENSIONS))

# Formats whose files can carry each extra; the rest silently go without, because
# refusing to write a BMP just because the photo had EXIF would help nobody.
ALPHA_FORMATS = frozenset({"PNG", "WEBP", "TIFF"})
ICC_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "TIFF"})
EXIF_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "TIFF"})
QUALITY_FORMATS = frozenset({"JPEG", "WEBP"})

VIDEO_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
"""Video file extensions and their FFmpeg container formats."""


def is_video(path: str | Path) -> bool:
    """Whether ``path`` names a video by its extension."""
    return Path(path).suffix.lower() in VIDEO_CONTAINERS


def output_extension_ok(path: str | Path) -> bool:
    """Whether :func:`stylize.io.encode.write_image` can infer a format from ``path``'s extension.

    Lets a CLI reject ``-o out.gif`` before spending minutes on the network.
    """
    return Path(path).suffix.lower() in FORMAT_BY_EXTENSION


def output_format(format: str) -> str:
    """Pillow's format name for a user's ``jpg``, ``.png``, ``TIFF``...; unknown ones are refused."""
    key = "." + format.lower().lstrip(".")
    if key not in FORMAT_BY_EXTENSION:
        raise StylizeError(f"unknown output format {format!r}; use one of {EXTENSION_LIST}")
    return FORMAT_BY_EXTENSION[key]


def resolve_format(path: Path | None, format: str | None) -> str:
    """Pillow format name from an explicit ``format`` or else from the extension."""
    if format is not None:
        return output_format(format)
    assert path is not None
    fmt = FORMAT_BY_EXTENSION.get(path.suffix.lower())
    if fmt is None:
        shown = path.suffix or "no extension"
        raise StylizeError(
            f"{path}: cannot tell the output format from {shown!r}; use one of {EXTENSION_LIST}"
        )
    return fmt
