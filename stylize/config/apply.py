"""Defaults of applying styles: working and tile sizes, the border, video, devices, backends, files."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import StylizeError
from .network import MIN_SIZE
from ..io.formats import output_format

AUTO_TILE_OTHER = 2048
"""Tile size when none is asked for and the free memory cannot be told (CPUs, Apple GPUs);
on CUDA it follows the free memory (``stylize.apply.memory.auto_tile``)."""

AUTO_TILE_ONNX = 1024
"""Tile size of the ONNX Runtime path when none is asked for: its memory arena holds about twice what
a pass keeps alive, so a quarter of PyTorch's tile pixels keeps its peak under the PyTorch path's."""

WORK_SIZE = 1024
"""Long side (px) the network paints at when neither ``--work-size`` nor the style says: its strokes have
a fixed size in pixels, a hatching on a large photo seen whole; painted at this size they keep the size
relative to the photo they have at ~1000 px (:func:`~stylize.apply.tiling.restore_detail` restores sharpness)."""

EDGE_BORDER = 16
"""Mirrored border (px) the network sees around every photo, cropped off after. At the right and bottom
edges the stride-2 convolutions sample lopsidedly, and training taught the network a colour there (a
thin line along The Scream's right edge); with the border those pixels fall outside the photo."""


@dataclass(frozen=True)
class ApplySettings:
    """How to render a photo, besides the style; checked on creation.

    ``strength`` in [0, 1] blends the stylized image with the photo (0 gives the photo
    back). ``preserve_color`` keeps the photo's chroma. ``max_size`` downscales the
    photo first so its long side is at most that many pixels. ``tile_size``: tile
    images whose long side exceeds it (``None``: from the free memory on CUDA,
    :data:`AUTO_TILE_OTHER` elsewhere; 0: never); smaller tiles are used if it runs out of memory.
    ``stats_size`` is the long side of the statistics pass when tiling (``None``: the
    tile size; 0: the full image, exact but as memory-hungry as not tiling).
    ``work_size``: photos longer than this are painted at this long side and brought
    back to full resolution with their detail (:func:`~stylize.apply.tiling.restore_detail`), so strokes keep
    their size relative to the photo (0: paint at full resolution, the network's native
    strokes; smaller: larger strokes; ``None``: the style's own, else :data:`WORK_SIZE`). ``border``: the
    photo is mirrored by this many px on every side before the network and cropped back after
    (:data:`EDGE_BORDER`; 0: none).
    """

    strength: float = 1.0
    preserve_color: bool = False
    max_size: int | None = None
    tile_size: int | None = None
    stats_size: int | None = None
    work_size: int | None = None
    border: int = EDGE_BORDER

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0:  # also refuses NaN
            raise StylizeError(f"strength must be between 0 and 1, got {self.strength}")
        if self.max_size is not None and self.max_size < MIN_SIZE:
            raise StylizeError(f"max size must be at least {MIN_SIZE} px, got {self.max_size}")
        if self.tile_size is not None and self.tile_size < 0:
            raise StylizeError(f"tile size must be 0 (never tile) or positive, got {self.tile_size}")
        if self.stats_size is not None and self.stats_size != 0 and self.stats_size < MIN_SIZE:
            raise StylizeError(f"stats size must be 0 (full image) or at least {MIN_SIZE} px, got {self.stats_size}")
        if self.work_size is not None and self.work_size != 0 and not self.work_size >= MIN_SIZE:
            raise StylizeError(f"work size must be 0 (full resolution) or at least {MIN_SIZE} px, got {self.work_size}")
        if not self.border >= 0:
            raise StylizeError(f"border must be 0 (none) or positive, got {self.border}")

    def work_size_for(self, own: int | None = None) -> int:
        """The long side to paint at: ``work_size`` if given, else the style's ``own``, else :data:`WORK_SIZE`."""
        return next(size for size in (self.work_size, own, WORK_SIZE) if size is not None)

    def paints_smaller(self, size: tuple[int, int], own: int | None = None) -> bool:
        """Whether an image of ``size`` (H, W) is painted at the working size (:meth:`work_size_for`
        with the style's ``own``) rather than as is."""
        work = self.work_size_for(own)
        return bool(work) and max(size) > work


DEFAULT_SMOOTHING = 0.9
"""Weight of the previous frame's norm statistics and still pixels (0: every frame on its own)."""

DEFAULT_CRF = 18
"""x264/VP9 constant-quality setting: 18 is visually lossless for x264."""


@dataclass(frozen=True)
class VideoSettings:
    """How to write a video, besides the style and the per-frame settings."""

    smoothing: float = DEFAULT_SMOOTHING
    crf: int = DEFAULT_CRF

    def __post_init__(self) -> None:
        if not 0.0 <= self.smoothing < 1.0:  # 1 would freeze the first frame's statistics for good
            raise StylizeError(f"smoothing must be at least 0 and below 1, got {self.smoothing}")


DEVICE_KINDS = ("auto", "cpu", "cuda", "mps")
"""``--device`` values; ``cuda:N`` names one GPU."""

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
"""``--precision`` values, for training and inference alike."""

BACKENDS = ("auto", "torch", "onnx")
"""``apply --backend`` values: who renders (ONNX Runtime needs no PyTorch)."""

CUDA_FAST_PATH = "fp16"
"""How ``apply`` runs the network on CUDA unless told otherwise: a fast path spec
(:mod:`stylize.runtime.variants`). ``fp16`` is the behaviour before the variants existed; set it to
the fastest spec ``python -m benchmarks.gpu_check`` finds within its fidelity bar (``variants.md``),
weighing its ``setup s``: a compiled path pays it in every process and for every new photo size."""


def check_device_name(name: str) -> str:
    """``--device`` lower-cased and checked for its form (whether the device is there is
    :func:`stylize.runtime.device.choose_device`'s question)."""
    name = name.strip().lower()
    kind, _, index = name.partition(":")
    if kind not in DEVICE_KINDS or (index and (kind != "cuda" or not index.isdigit())):
        raise StylizeError(f"--device {name}: choose one of {', '.join(DEVICE_KINDS)} (or cuda:N)")
    return name


DEFAULT_MAX_PIXELS: int = 89_478_485
"""Pillow's own limit (about 89.5 Mpx): far past what a style network can paint on one accelerator,
so no real photo meets it, while a crafted small file claiming 100 000 x 100 000 px is refused before
any memory is allocated. ``max_pixels=0`` (``--max-pixels 0``) lifts it."""

SHEET_CELL = (32, 256, 4096)
"""``stylize sheet --cell``: the smallest, default and largest long side of a cell, in pixels."""

SHEET_MAX_COLUMNS = 100
"""``stylize sheet --columns`` at most: wider than any screen or print at the smallest cell."""

DEFAULT_QUALITY: int = 95
"""JPEG and WebP quality (1-100) of the images stylize writes."""


def check_quality(quality: int) -> None:
    """Refuse a JPEG/WebP quality outside 1-100."""
    if not 1 <= quality <= 100:
        raise StylizeError(f"quality must be between 1 and 100, got {quality}")


def check_max_pixels(max_pixels: int | None) -> None:
    """Refuse a negative pixel limit (0 or ``None``: no limit)."""
    if max_pixels is not None and max_pixels < 0:
        raise StylizeError(f"max pixels must be 0 (no limit) or positive, got {max_pixels}")


@dataclass(frozen=True)
class BatchOptions:
    """File-level settings of a run; checked on creation, before any work."""

    quality: int = DEFAULT_QUALITY
    format: str | None = None
    overwrite: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    workers: int = 2

    def __post_init__(self) -> None:
        check_quality(self.quality)
        check_max_pixels(self.max_pixels)
        if self.workers < 0:
            raise StylizeError(f"workers must be 0 (no background reading) or more, got {self.workers}")
        if self.format is not None:
            output_format(self.format)
