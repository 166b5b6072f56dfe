"""Every default and every fact of the architecture, written once, without torch.

Plain dataclasses and constants, so that the command line shows each default in its
``--help`` from here (and ``stylize --help`` stays fast), and the library takes them from
here too: nothing restates a number that lives here. The settings are frozen and checked
on creation. A checkpoint stores its :class:`NetConfig` and :class:`TrainSettings`, and
:meth:`TrainSettings.from_dict` is the one way back from that metadata, with changes.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .checks import checked_fields
from .errors import StylizeError
from .io.formats import output_format

# ----------------------------------------------------------------------------- the network

MIN_SIZE = 8
"""Smallest input side: the network sees it at 1/4 scale, where a 3x3 reflection pad needs 2 px."""

ALIGN = 4
"""The network downsamples by 4; tiles start on multiples of it to keep the same pixel grid."""


def check_size(height: int, width: int) -> None:
    """Refuse, in one line, an image too small for the network (on either backend)."""
    if min(height, width) < MIN_SIZE:
        raise StylizeError(f"image is {width}x{height} px; the network needs at least {MIN_SIZE} px on each side")


@dataclass(frozen=True)
class NetConfig:
    """Architecture of a :class:`~stylize.model.network.StyleNet`; saved in checkpoints."""

    channels: tuple[int, int, int] = (32, 64, 128)
    n_residual: int = 5
    n_styles: int = 1
    separable: bool = False
    """Every 3x3 convolution (all but the first and the last) depthwise-separable: depthwise 3x3, then 1x1."""
    upsample: str = "nearest"
    """Upsampling stages: ``nearest`` (upsample, then 3x3 conv) or ``shuffle`` (3x3 conv, then pixel shuffle)."""
    outer_kernel: int = 9
    """Kernel size of the first and the last convolution."""
    full_res: bool = True
    """Whether the first and the last convolution run at full resolution. If not, the first
    strides by 2 and the last predicts every 2x2 block of pixels (pixel shuffle), so no
    feature map is ever at full size; the second stride-2 convolution and the last
    upsampling stage then keep their resolution, and the depth stays 1/4."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "NetConfig":
        """The config in ``data``; checkpoints written before the layer kinds existed get the defaults."""
        return cls(channels=tuple(data["channels"]), n_residual=int(data["n_residual"]), n_styles=int(data["n_styles"]),
                   separable=bool(data.get("separable", cls.separable)), upsample=data.get("upsample", cls.upsample),
                   outer_kernel=int(data.get("outer_kernel", cls.outer_kernel)),
                   full_res=bool(data.get("full_res", cls.full_res)))


PRESETS: dict[str, NetConfig] = {
    "johnson": NetConfig(),
    "small": NetConfig(channels=(16, 32, 64), n_residual=3),
    "fast": NetConfig(channels=(16, 32, 64), n_residual=4, separable=True, upsample="shuffle", outer_kernel=3,
                      full_res=False),
}
"""Named architectures: ``johnson`` is the paper's network, ``small`` and ``fast`` are for CPUs
(``fast`` chosen by measured ONNX Runtime time: ``benchmarks/student_candidates.py``)."""


# ----------------------------------------------------------------------------- applying

AUTO_TILE_OTHER = 2048
"""Tile size when none is asked for and the free memory cannot be told (CPUs, Apple GPUs);
on CUDA it follows the free memory (``stylize.apply.memory.auto_tile``)."""

AUTO_TILE_ONNX = 1024
"""Tile size of the ONNX Runtime path when none is asked for. ONNX Runtime's memory arena
holds about twice what a pass keeps alive at once, so at PyTorch's 2048 px tiles a
full-resolution 4000 px photo peaked at over twice the PyTorch path's memory; a quarter of
the pixels per pass brings it well under, for some more overlap between tiles."""

WORK_SIZE = 1024
"""Long side (px) the network paints at by default. The network paints strokes of a fixed
size in pixels, which shrink to an invisible hatching on a large photo seen whole; painted
at this size, they have the size relative to the photo that they have on a ~1000 px photo,
whatever its resolution, and :func:`~stylize.apply.tiling.restore_detail` brings the photo's sharpness back."""


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
    strokes; smaller: larger strokes).
    """

    strength: float = 1.0
    preserve_color: bool = False
    max_size: int | None = None
    tile_size: int | None = None
    stats_size: int | None = None
    work_size: int = WORK_SIZE

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0:  # also refuses NaN
            raise StylizeError(f"strength must be between 0 and 1, got {self.strength}")
        if self.max_size is not None and self.max_size < MIN_SIZE:
            raise StylizeError(f"max size must be at least {MIN_SIZE} px, got {self.max_size}")
        if self.tile_size is not None and self.tile_size < 0:
            raise StylizeError(f"tile size must be 0 (never tile) or positive, got {self.tile_size}")
        if self.stats_size is not None and self.stats_size != 0 and self.stats_size < MIN_SIZE:
            raise StylizeError(f"stats size must be 0 (full image) or at least {MIN_SIZE} px, got {self.stats_size}")
        if self.work_size != 0 and not self.work_size >= MIN_SIZE:
            raise StylizeError(f"work size must be 0 (full resolution) or at least {MIN_SIZE} px, got {self.work_size}")

    def paints_smaller(self, size: tuple[int, int]) -> bool:
        """Whether an image of ``size`` (H, W) is painted at the working size rather than as is."""
        return bool(self.work_size) and max(size) > self.work_size


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


# ----------------------------------------------------------------------------- training

EVALUATE_SIZE = 256
"""Long side (px) of the test photos of ``stylize evaluate``: 256 as Johnson et al. compared."""

EVALUATE_BUDGETS = (50, 100, 300)
"""L-BFGS iteration budgets of ``stylize evaluate``'s Gatys baseline."""

LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
"""The loss network's taps, in order."""

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


@dataclass(frozen=True)
class LossWeights:
    """Relative weights of the loss terms, the content layer and each style layer's share."""

    content: float = 1.0
    style: float = 2.0
    tv: float = 0.0
    content_layer: str = "relu2_2"
    style_layers: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)

    def __post_init__(self) -> None:
        if self.content_layer not in LAYERS:
            raise StylizeError(f"unknown content layer {self.content_layer!r}; choose one of {', '.join(LAYERS)}")
        layers = tuple(float(w) for w in self.style_layers)
        if len(layers) != len(LAYERS) or any(not math.isfinite(w) or w < 0 for w in layers):
            raise StylizeError(f"style layer weights must be {len(LAYERS)} non-negative numbers "
                               f"(one per {', '.join(LAYERS)}), got {list(self.style_layers)}")
        object.__setattr__(self, "style_layers", layers)

    @property
    def content_index(self) -> int:
        return LAYERS.index(self.content_layer)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["style_layers"] = list(self.style_layers)
        return data


@dataclass
class TrainSettings:
    """Everything that shapes a training run; stored in the checkpoint's metadata."""

    steps: int = 40_000
    batch_size: int = 16
    image_size: int = 256
    style_size: int = 512
    lr: float = 1e-3
    final_lr_fraction: float = 0.01
    warmup_steps: int = 0
    warmup_from: int = 0
    weights: LossWeights = field(default_factory=LossWeights)
    preset: str = "johnson"
    seed: int = 0
    checkpoint_every: int = 1000
    preview_every: int = 1000
    snapshot_every: int = 0
    """Keep a lean copy of the weights every N steps (0: none), to release an earlier state."""
    log_every: int = 10
    workers: int = 4
    precision: str = "auto"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["weights"] = self.weights.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict, **changes: Any) -> "TrainSettings":
        """Settings stored in a checkpoint's metadata, with ``changes`` (as :meth:`changed` takes them).

        The one way from a checkpoint back to settings: keys that this version does not
        know are ignored, keys it misses take the defaults, values of the wrong type or out
        of range are refused (checkpoints are untrusted).
        """
        values = checked_fields(cls, data, "training settings")
        values["weights"] = LossWeights(**checked_fields(LossWeights, values.get("weights", {}), "loss weights"))
        return cls(**values).changed(**changes)

    def changed(self, style_weight: float | None = None, **changes: Any) -> "TrainSettings":
        """A copy with ``changes``; ``None`` changes nothing, ``style_weight`` only the style loss's weight."""
        given = {k: v for k, v in changes.items() if v is not None}
        if style_weight is not None:
            given["weights"] = dataclasses.replace(self.weights, style=style_weight)
        return dataclasses.replace(self, **given)

    def lr_at(self, step: int) -> float:
        """Cosine decay from ``lr`` to ``lr * final_lr_fraction`` over ``steps``.

        A linear warm-up over ``warmup_steps`` steps from ``warmup_from`` (where the optimizer
        started fresh: step 0, or the step of a released model training continues from)
        keeps Adam's first, poorly estimated steps from undoing what the weights know.
        """
        lr = cosine_lr(self.lr, self.final_lr_fraction, self.steps, step)
        if self.warmup_steps > 0:
            # Never below the first warm-up step's rate: a step before ``warmup_from`` (settings
            # carried over to a fresh optimizer) would otherwise get a negative rate, and Adam climb the loss.
            lr *= min(1.0, max(step - self.warmup_from + 1, 1) / self.warmup_steps)
        return lr


def cosine_lr(lr: float, final_fraction: float, steps: int, step: int) -> float:
    """Cosine decay from ``lr`` at step 0 to ``lr * final_fraction`` at ``steps`` (and after)."""
    progress = min(step / max(steps, 1), 1.0)
    floor = lr * final_fraction
    return floor + (lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


ADD_STEPS = 2000
"""Default steps of ``add-style``: a style is ~3,200 numbers (johnson network), not 1.7 M weights."""

STYLE_LR = 1e-2
"""Learning rate of new style rows (add-style and on the fly), not the model's own (1e-3 for a
whole network): with Adam each number moves at most ~lr a step, and gamma/beta must travel
O(1) from the mean row. ``benchmarks/new_style_quality.py`` compares the two (README,
"Quality: as good as a network trained on the painting alone?")."""


@dataclass(frozen=True)
class DistillSettings:
    """What shapes a distillation run (:mod:`stylize.train.distill`); stored in the student's checkpoint.

    Small crops and batches: on a CPU the step is the teacher's forward pass, which grows
    with the pixels, and many small steps teach more per hour than few large ones.
    """

    preset: str = "fast"
    steps: int = 200_000
    batch_size: int = 4
    image_size: int = 160
    resize: int = 320
    """Short side the photos are resized to before cropping: crops of a photo at the scale
    the network paints at (apply paints at 1024 px), not the whole photo shrunk."""
    lr: float = 1e-3
    style_lr: float = STYLE_LR
    """Learning rate of the styles' (gamma, beta) rows: each row learns from 1/22 of the
    samples only, and must travel O(1) from the identity (see :data:`STYLE_LR`)."""
    final_lr_fraction: float = 0.05
    gradient_weight: float = 1.0
    """Weight of the image-difference L1 (the strokes) beside the pixel L1."""
    seed: int = 0
    checkpoint_minutes: float = 5.0
    log_every: int = 10

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, **changes: Any) -> "DistillSettings":
        """Settings stored in a student's metadata (checked: checkpoints are untrusted), with ``changes``."""
        return dataclasses.replace(cls(**checked_fields(cls, data, "distillation settings")), **changes)

    def decay_at(self, step: int) -> float:
        """The factor every learning rate is multiplied by at ``step``: a cosine from 1 to ``final_lr_fraction``."""
        return cosine_lr(1.0, self.final_lr_fraction, self.steps, step)

QUICK_CPU = dict(steps=40, image_size=192, batch_size=1, lr=0.025, workers=0)
"""``apply --style-image`` on a CPU: a first look in well under a minute (VGG16 is most of each step), from
the nearest shipped style; ``--style-steps`` asks for more. Within one budget of crop pixels, larger crops
scored better than more of them (the styles are used on large photos), and 0.025 than 0.01 (too slow
in 40 steps) or 0.1 (noisy): ``benchmarks/style_image_holdout.py``."""

QUICK_GPU = dict(steps=500, image_size=256, batch_size=8, lr=STYLE_LR, workers=2)
"""``apply --style-image`` on a GPU: training-size crops, seconds."""

# Pillow's own default (2**30 // 4 // 3, about 89.5 Mpx: a 1 GiB budget at 4 bytes per
# pixel across 3 channels).  It is familiar to anyone who has met Pillow's warning, and
# it is already far past what a style network can process on one accelerator (the
# activations of a 90 Mpx photo need tens of GiB), so a legitimate photo never hits it
# while a crafted 50 kB PNG claiming 100 000 x 100 000 pixels is refused before any
# memory is allocated.  Callers lift it with ``max_pixels=0`` (``--max-pixels 0``).
DEFAULT_MAX_PIXELS: int = 89_478_485

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
