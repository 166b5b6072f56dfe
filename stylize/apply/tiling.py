"""What a rendering is asked for, and how an image is cut into tiles: the torch-free part.

Shared by the PyTorch renderer (:mod:`stylize.apply.torch_backend`) and the ONNX Runtime one
(:mod:`stylize.apply.onnx_backend`), which must not import PyTorch: its point is to start fast.
``keep_chroma`` works on torch tensors and numpy arrays alike.
"""

from __future__ import annotations

from typing import Callable, Protocol, TypeVar

import numpy as np

from ..config import ALIGN, AUTO_TILE_OTHER, ApplySettings
from ..errors import StylizeError


class Network(Protocol):
    """What tiling needs to know of a network (a checkpoint's or an ONNX graph's config): its depth and
    the layer kinds that set its receptive field."""

    n_residual: int
    outer_kernel: int
    full_res: bool
    upsample: str


LUMA = (0.299, 0.587, 0.114)
"""ITU-R BT.601 luma weights, as in JPEG's YCbCr."""


def tile_margin(config: Network) -> int:
    """How far (px, rounded up to a multiple of 4) an output pixel sees into the input.

    The sum over the convolutions of :class:`~stylize.model.network.StyleNet` of each kernel's
    radius times the scale of its input (1 at full resolution, 2 at half, 4 at quarter).
    ``johnson``: 9x9 at 1, 3x3 at 1 and 2 going down, two 3x3 at 4 per residual block,
    3x3 at 2 and 1 going up (after nearest upsampling), 9x9 at 1. Pixel-shuffle upsampling
    convolves before upsampling (at 4 and 2); without full-resolution ends the first
    conv strides at 1, the others go down at 2 and 4, and the last works at 2. Plus 4 px
    for the rounding of the upsampling. Pixels farther than this from a tile's edges do
    not depend on how the edges were padded.
    """
    outer = config.outer_kernel // 2
    down = (1, 2) if config.full_res else (2, 4)
    up = (2, 1) if config.full_res and config.upsample == "nearest" else (4, 2)
    last = 1 if config.full_res else 2
    radius = outer + sum(down) + 2 * 4 * config.n_residual + sum(up) + outer * last + ALIGN
    return -(-radius // ALIGN) * ALIGN


def tile_spans(length: int, tile: int, margin: int) -> list[tuple[int, int, int, int]]:
    """Tiles along one axis: (start, end) to render and (keep_start, keep_end) to use.

    Starts are multiples of 4 and neighbours overlap by at least ``2 * margin``; the
    kept parts meet in the middle of each overlap, so they tile ``[0, length)`` exactly
    and stay ``margin`` px clear of every edge between tiles. The last tile ends at
    ``length`` and may be up to 3 px longer than ``tile`` to keep its start aligned.
    """
    if length <= tile:
        return [(0, length, 0, length)]
    step = (tile - 2 * margin) // ALIGN * ALIGN
    starts = sorted(set(range(0, length - tile, step)) | {(length - tile) // ALIGN * ALIGN})
    ends = [start + tile for start in starts[:-1]] + [length]
    cuts = [0] + [(start + end) // 2 for start, end in zip(starts[1:], ends[:-1], strict=True)] + [length]
    spans = zip(starts, ends, cuts[:-1], cuts[1:], strict=True)
    return [(start, end, keep, stop) for start, end, keep, stop in spans if keep < stop]


Pixels = TypeVar("Pixels")
"""A (3, H, W) float image: a torch tensor or a numpy array."""


def mirrored(length: int, border: int) -> list[int]:
    """Indices into an axis of ``length`` that extend it by ``border`` on both sides, mirrored
    about the end pixels (numpy's ``reflect``), for any border: one longer than the axis
    reflects back and forth, where PyTorch's reflection padding refuses."""
    if length == 1:
        return [0] * (length + 2 * border)
    period = 2 * (length - 1)
    folded = [index % period for index in range(-border, length + border)]
    return [index if index < length else period - index for index in folded]


def mirror_pad(image: Pixels, border: int) -> Pixels:
    """A (C, H, W) image mirrored by ``border`` px on every side (:func:`mirrored`).

    A numpy array goes through ``np.pad``, which copies whole rows; indexing the last axis
    with a list gathers element by element, many times slower on a photo."""
    if isinstance(image, np.ndarray):
        return np.pad(image, ((0, 0), (border, border), (border, border)), mode="reflect")
    height, width = image.shape[-2:]
    return image[:, mirrored(height, border)][:, :, mirrored(width, border)]


def keep_chroma(photo: Pixels, stylized: Pixels) -> Pixels:
    """The photo's colours with the stylized image's luminance.

    Swapping Y in YCbCr while keeping Cb and Cr is, because YCbCr is a linear transform
    of RGB, the same as adding the change in luma to each RGB channel; values pushed
    outside [0, 1] are clipped.
    """
    return (photo + luma(stylized) - luma(photo)).clip(0, 1)


def luma(image: Pixels) -> Pixels:
    """(1, H, W) BT.601 luma of a (3, H, W) image (summed in place: a photo's planes are megabytes)."""
    red, green, blue = LUMA
    out = image[0:1] * red
    out += image[1:2] * green
    out += image[2:3] * blue
    return out


def restore_detail(photo: Pixels, small_photo: Pixels, small_stylized: Pixels,
                   upsample: Callable[[Pixels, tuple[int, int]], Pixels]) -> Pixels:
    """``small_stylized`` (the stylized ``small_photo``) at the size of ``photo``, with its detail.

    The stylized image is upsampled, and the photo's luminance detail finer than the
    small photo could hold, ``luma(photo) - upsampled luma(small_photo)``, is added to
    each channel (as :func:`keep_chroma` adds a luma change): the colours and strokes
    stay the painting's, edges and texture come back as sharp as the photo's.
    ``upsample(image, (H, W))`` is the backend's (bicubic) resize. It is linear, so the small
    luma is subtracted before upsampling: three planes go up instead of four.
    """
    out = upsample(small_stylized - luma(small_photo), tuple(photo.shape[-2:]))
    out += luma(photo)
    return clip_in_place(out)


def clip_in_place(image: Pixels) -> Pixels:
    """``image`` clipped to [0, 1] in place (a tensor's or an array's own way), and returned."""
    return image.clamp_(0, 1) if hasattr(image, "clamp_") else np.clip(image, 0, 1, out=image)


def min_tile(config: Network) -> int:
    """The smallest useful tile: twice the overlap, so at least half of each tile is kept."""
    return 4 * tile_margin(config)


def tile_size_for(settings: ApplySettings, config: Network, free_tile: int | None = None) -> int:
    """The tile size in effect (0: never tile), checked against :func:`min_tile`.

    With no ``settings.tile_size``: ``free_tile`` (what the backend's memory holds, where
    it can be told: the free memory on CUDA, :data:`~stylize.config.AUTO_TILE_ONNX` on ONNX Runtime),
    else :data:`~stylize.config.AUTO_TILE_OTHER`.
    """
    smallest = min_tile(config)
    if settings.tile_size is None:
        return max(free_tile or AUTO_TILE_OTHER, smallest)
    if 0 < settings.tile_size < smallest:
        raise StylizeError(f"tile size {settings.tile_size} is too small for this network, whose tiles "
                           f"overlap by {2 * tile_margin(config)} px; use at least {smallest}")
    return settings.tile_size
