"""Pixels between Pillow, numpy and torch: float32 ``(C, H, W)`` in ``[0, 1]``, whatever holds them.

An 8-bit photo read as numpy arrays stays ``uint8`` ``(C, H, W)`` until something needs
floats (:func:`as_float`): the ONNX Runtime path resizes and restores detail on its 8-bit
planes, so a photo's full-size planes are never turned into floats and back. torch is
imported only when a tensor is asked for, so that path never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """Convert a Pillow image to a float32 ``(3, H, W)`` tensor in ``[0, 1]``.

    Any mode is accepted and converted to 8-bit RGB first (alpha is discarded); use
    :func:`read_image` when 16-bit precision or alpha matter.
    """
    import torch

    return torch.from_numpy(pil_to_array(img))


def pil_to_array(img: Image.Image) -> np.ndarray:
    """:func:`pil_to_tensor` as a numpy array."""
    if img.mode != "RGB":
        img = img.convert("RGB")
    return bands_to_array(img)


def bands_to_uint8(img: Image.Image) -> np.ndarray:
    """An 8-bit image's bands as a uint8 ``(C, H, W)`` array, split apart by Pillow in C."""
    out = np.empty((len(img.getbands()), img.height, img.width), np.uint8)
    for plane, band in zip(out, img.split()):
        plane[...] = np.asarray(band)
    return out


def as_float(pixels: np.ndarray) -> np.ndarray:
    """Numpy pixels as float32 in ``[0, 1]``: 8-bit planes scaled, float ones as they are."""
    if pixels.dtype == np.uint8:
        return np.divide(pixels, np.float32(255.0), dtype=np.float32)
    return np.asarray(pixels, dtype=np.float32)


def bands_to_array(img: Image.Image) -> np.ndarray:
    """An 8-bit image's bands (RGB, RGBA, ...) as a float32 ``(C, H, W)`` array in ``[0, 1]``.

    Pillow splits the bands apart in C and each is scaled into its plane of the output, so
    no ``(H, W, C)`` array is made and transposed: that strided copy cost more than the rest.
    """
    out = np.empty((len(img.getbands()), img.height, img.width), np.float32)
    for plane, band in zip(out, img.split()):
        np.divide(np.asarray(band), np.float32(255.0), out=plane, dtype=np.float32)
    return out


def tensor_to_pil(t: torch.Tensor | np.ndarray) -> Image.Image:
    """Convert a float ``(3, H, W)`` tensor (or array) in ``[0, 1]``, or 8-bit planes, to an 8-bit RGB Pillow image.

    Values are clamped (networks overshoot slightly) and NaNs become 0, then rounded
    rather than truncated so that a read/write round trip is lossless.
    """
    if t.ndim != 3 or t.shape[0] != 3:
        raise ValueError(f"expected an RGB tensor of shape (3, H, W), got {tuple(t.shape)}")
    return Image.merge("RGB", [Image.fromarray(plane) for plane in to_uint8(t)])


def long_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """(height, width) scaled so that the long side is ``size``: every resize to a work size's."""
    scale = size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_long_side(image: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (C,H,W) so its long side is ``size``, keeping the aspect ratio (antialiased)."""
    import torch.nn.functional as F

    new = long_side_size(*image.shape[-2:], size)
    return F.interpolate(image[None], size=new, mode="bilinear", antialias=True, align_corners=False)[0].clamp(0, 1)


def as_array(pixels: Any) -> np.ndarray:
    """A numpy array of ``pixels``: a torch tensor (any device) is copied to the CPU, floats as float32."""
    if hasattr(pixels, "detach"):  # duck-typed: importing torch here would defeat the torch-free path
        pixels = pixels.detach()
        return (pixels.float() if pixels.is_floating_point() else pixels).cpu().numpy()
    return np.asarray(pixels)


def to_uint8(pixels: Any) -> np.ndarray:
    """Float pixels in [0, 1] -> uint8 in C order, clamped, NaN-safe and rounded (half to even);
    8-bit pixels as they are.

    One float copy, in C order, and the steps after it in place: a photo's planes are
    megabytes, and each pass over them costs.
    """
    a = as_array(pixels)
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    a = np.array(a, dtype=np.float32, order="C")
    np.nan_to_num(a, copy=False, nan=0.0)
    np.clip(a, 0.0, 1.0, out=a)
    a *= np.float32(255.0)
    return np.rint(a, out=a).astype(np.uint8)
