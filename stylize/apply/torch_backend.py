"""Applying a trained network to photos on PyTorch (any device): :class:`Stylizer`, the Python API.

>>> from stylize import Stylizer
>>> stylizer = Stylizer.load("styles.safetensors")
>>> stylizer.apply("photo.jpg", style="starry").save("photo-starry.jpg")

Four things here go beyond calling the network:

* **Precision and fast path.** On CUDA the network runs as :data:`~stylize.config.CUDA_FAST_PATH`
  says (:mod:`stylize.runtime.variants`; :mod:`stylize.apply.fast` compiles or captures it),
  for now fp16 autocast; it is not known to be faster (``benchmarks/README.md``, *CUDA*). fp16 rather than bf16
  because the output is quantized to 8 bits: bf16 keeps 8 significant bits, right at that
  step, so it would flip many pixels by one level; fp16 keeps 11. fp16's small range is the usual worry, but the variance,
  the one quantity that could overflow, is computed in fp32 (see :mod:`stylize.model.norm`),
  and after each instance norm activations are O(1). Should an output still come out
  non-finite, that pass is redone in fp32, so half precision never costs a photo.
  CPUs and Apple GPUs default to fp32, where half precision is not faster.
* **Tiling.** An image longer than the tile size is processed in overlapping tiles,
  which bounds memory. Instance norm would give every tile its own statistics, hence
  its own colours; instead the statistics of every norm layer are recorded on one pass
  over the whole image, downscaled to the tile size when larger, and replayed for
  every tile (:class:`~stylize.model.norm.NormStats`). With shared statistics the network
  is translation-equivariant, so a pixel comes out the same from any tile as long as
  the tile's edges, where reflection padding stands in for the missing neighbours,
  are out of its reach. Hence tiles start on multiples of 4 (the stride-2 grids line
  up with the whole image's), overlap by twice the network's receptive-field radius,
  and each contributes only the middle of its overlaps: a seam cannot show, and with
  statistics from the full image the tiled result equals the untiled one to float
  precision. No blending is needed, since overlapping tiles agree exactly. On CUDA
  the tile size is chosen from the free memory (:func:`stylize.apply.memory.auto_tile`);
  on any out-of-memory error (CUDA, cuDNN, MPS, CPU) the tiles are halved, the
  failed pass's memory freed, and the image retried (:meth:`Stylizer.render`).
* **Stroke size.** The network paints strokes of a fixed size in pixels: on a 4000 px
  photo they shrink to an invisible hatching once the photo is seen whole. So photos
  longer than the working size (``--work-size``, else the style's own, else
  :data:`~stylize.config.WORK_SIZE`) are painted
  at that size and brought back to full resolution by
  :func:`~stylize.apply.tiling.restore_detail`: the painting is upsampled and the photo's own
  fine luminance detail, which the downscaling took away, is added back. At screen size
  a large photo then looks as its ~1000 px version does, sharp at full size, for the
  cost of the small image's pass. Working size 0 paints at full resolution.
* **Controls.** ``strength`` blends the result with the photo; ``preserve_color`` keeps
  the photo's colours and takes only the luminance from the stylized image.
"""

from __future__ import annotations

import math
import traceback
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from ..config import ALIGN, ApplySettings
from ..errors import StylizeError
from ..io.images import Photo, photo_from_pil, read_image
from ..io.pixels import as_float, resize_long_side, tensor_to_pil
from ..model import checkpoint
from ..model.engine import FastStyleNet
from ..model.header import check_work_sizes
from ..model.network import StyleNet
from ..model.norm import BlendedStats, NormStats, shared_stats
from ..model.styles import StyleChoice
from ..runtime.device import resolve_device
from ..runtime.precision import HALF_DTYPES, check_precision, cuda_has_bf16
from ..runtime.process import EngineOptions
from ..runtime.variants import resolve_fast_path
from .fast import cudnn_autotuned, fast_network
from .memory import auto_tile, is_out_of_memory, release
from .renderer import Prior, Renderer
from .tiling import min_tile, tile_size_for


class Stylizer(Renderer[Tensor]):
    """A loaded style network on a device, ready to render photos in any of its styles, on PyTorch."""

    def __init__(self, net: StyleNet, styles: Sequence[str], *, device: str | torch.device = "auto",
                 precision: str = "auto", engine: EngineOptions | None = EngineOptions(),
                 work_sizes: Mapping[str, int] | None = None) -> None:
        """``engine``: how :mod:`stylize.model.engine` runs the network (``None``: the plain
        :meth:`StyleNet.forward`, slower, same result), and its ``fast_path``
        (:mod:`stylize.runtime.variants`), whose precision ``precision="auto"`` takes;
        ``work_sizes``: the styles' own work sizes (a checkpoint's)."""
        self.device = resolve_device(device)
        self.net = net.to(self.device).eval()
        self.fast_path = resolve_fast_path(engine.fast_path if engine is not None else "auto", self.device.type)
        path = self.fast_path
        if engine is not None:
            layout = engine.channels_last if engine.channels_last is not None else (path.channels_last or None)
            self.model = FastStyleNet(self.net, replace(engine, channels_last=layout), norm=path.norm,
                                      pad_channels=path.pad_channels)
        else:
            self.model = self.net
        self.fast_model = fast_network(self.model, path.compile_mode, path.cuda_graphs)
        """The network for a plain pass (no statistics shared): compiled or replayed as the fast path says."""
        self.config = self.net.config
        self._styles = list(styles)
        self._work_sizes = check_work_sizes(dict(work_sizes or {}), self._styles)
        precision = check_precision(precision)
        self.half_dtype = _resolve_precision(path.precision if precision == "auto" else precision, self.device)
        self.tile_cap: int | None = None
        """The tile size that last recovered from running out of memory, kept for later images."""

    @classmethod
    def load(cls, path: str | Path | None = None, device: str | torch.device = "auto",
             precision: str = "auto", engine: EngineOptions | None = EngineOptions()) -> "Stylizer":
        """Load a checkpoint (default: :func:`stylize.io.weights.default_model`)."""
        from ..io.weights import default_model

        torch_device = resolve_device(device)
        ckpt = checkpoint.load(Path(path) if path is not None else default_model(), map_location=torch_device)
        return cls(ckpt.net, ckpt.styles, device=torch_device, precision=precision, engine=engine,
                   work_sizes=ckpt.work_sizes)

    @property
    def precision(self) -> str:
        """The precision the network runs in: ``fp32``, or ``fp16`` / ``bf16`` autocast."""
        return next((name for name, dtype in HALF_DTYPES.items() if dtype == self.half_dtype), "fp32")

    @property
    def styles(self) -> list[str]:
        """The style names, in the network's order."""
        return list(self._styles)

    @property
    def work_sizes(self) -> dict[str, int]:
        return dict(self._work_sizes)

    def apply(self, image: Image.Image | str | Path | Tensor, style: str | Mapping[str, float] | None = None,
              strength: float = 1.0, preserve_color: bool = False, max_size: int | None = None,
              tile_size: int | None = None, work_size: int | None = None) -> Image.Image:
        """Stylize one image: a PIL image, a file path, or a float (3|4, H, W) tensor in [0, 1].

        ``style`` is a name, a unique prefix, a mix (``"starry:0.7,wave:0.3"`` or a
        dict) or ``None`` for a one-style model. Returns an RGB PIL image, RGBA when
        the input had alpha, carrying the input's ICC profile. ``work_size`` sets the
        stroke size (see :class:`~stylize.config.ApplySettings`; ``None``: the style's own).
        """
        choices = self.choose(style)
        if len(choices) != 1:
            raise StylizeError("apply() renders one style; call it once per style")
        settings = ApplySettings(strength=strength, preserve_color=preserve_color, max_size=max_size,
                                 tile_size=tile_size, work_size=work_size)
        result = self.stylize_photo(_as_photo(image), choices[0], settings)
        img = tensor_to_pil(result.rgb)
        if result.alpha is not None:
            img.putalpha(Image.fromarray(result.alpha[0].clamp(0, 1).mul(255).round().byte().numpy()))
        if result.icc_profile:
            img.info["icc_profile"] = result.icc_profile
        return img

    # ------------------------------------------------------------------ the network

    @property
    def min_tile(self) -> int:
        """The smallest useful tile: twice the overlap, so at least half of each tile is kept."""
        return min_tile(self.net.config)

    def tile_size_for(self, settings: ApplySettings) -> int:
        """The tile size to start with (0: never tile), checked against :attr:`min_tile`.

        Unless ``settings`` ask for one: what fits the free memory (CUDA, see
        :func:`stylize.apply.memory.auto_tile`), else :data:`stylize.config.AUTO_TILE_OTHER`.
        Never above :attr:`tile_cap`, the size that last had to be fallen back to.
        """
        free_tile = None
        if settings.tile_size is None:
            element_size = torch.finfo(self.half_dtype or torch.float32).bits // 8
            free_tile = auto_tile(self.device, self.net.config, element_size)
        tile = tile_size_for(settings, self.net.config, free_tile)
        return max(min(tile, self.tile_cap), self.min_tile) if tile and self.tile_cap else tile

    def render(self, rgb: Tensor, weights: Tensor, settings: ApplySettings, prior: Prior | None,
               record: bool = False) -> tuple[Tensor, list | None]:
        """The network whole or tiled; out of memory, retry with tiles half the size.

        Any allocation failure counts (:func:`stylize.apply.memory.is_out_of_memory`), with or
        without ``settings.tile_size``; only ``tile_size=0`` (never tile) gives up at once.
        The failed pass's activations are referenced by the exception's traceback, so
        that is dropped before the allocator's cache is released.
        """
        height, width = rgb.shape[-2:]
        while True:
            tile = self.tile_size_for(settings)
            try:
                return super().render(rgb, weights, settings, prior, record)
            except RuntimeError as exc:
                if not is_out_of_memory(exc):
                    raise
                traceback.clear_frames(exc.__traceback__)
            release(self.device)  # here, not in the except block: the traceback is gone now
            current = min(tile or max(height, width), max(height, width))
            if not tile:
                raise StylizeError(f"out of {self.device.type} memory for a {width}x{height} image untiled "
                                   "(--tile-size 0); let it tile, or use --max-size")
            if current <= self.min_tile:
                raise StylizeError(f"out of {self.device.type} memory for a {width}x{height} image even in "
                                   f"tiles of {current} px; use --max-size or another --device")
            self.tile_cap = max(current // 2 // ALIGN * ALIGN, self.min_tile)

    def run(self, rgb: Tensor, weights: Tensor, prior: Prior | None, record: bool) -> tuple[Tensor, list | None]:
        """One pass; the statistics are :class:`~stylize.model.norm.NormStats` pairs, one per norm layer.

        Without ``record`` or a prior none are kept, and the engine runs its fused norm.
        """
        if prior is None and not record:
            return self._forward(rgb[None], weights)[0].cpu(), None
        if prior is None:
            stats = NormStats()
        elif prior.weight == 1:
            stats = NormStats()
            stats.pairs = list(prior.stats)
            stats.replay()
        else:
            stats = BlendedStats(prior.stats, prior.weight)
        return self._forward(rgb[None], weights, stats)[0].cpu(), stats.pairs

    def pixels(self, image: Tensor | np.ndarray) -> Tensor:
        if isinstance(image, np.ndarray):
            image = as_float(image)  # 8-bit planes (an 8-bit photo read as arrays) scaled
        return torch.as_tensor(image).detach().float().cpu()

    def style_weights(self, choice: StyleChoice) -> Tensor:
        return torch.tensor([choice.weights], dtype=torch.float32, device=self.device)

    def resize(self, image: Tensor, size: int) -> Tensor:
        return resize_long_side(image, size)

    def upsample(self, image: Tensor, size: tuple[int, int]) -> Tensor:
        return upsample(image, size)

    def empty(self, height: int, width: int) -> Tensor:
        return torch.empty(3, height, width)

    def blend(self, photo: Tensor, stylized: Tensor, strength: float) -> Tensor:
        return torch.lerp(photo, stylized, strength)

    @torch.inference_mode()
    def _forward(self, x: Tensor, weights: Tensor, stats: NormStats | None = None) -> Tensor:
        """One network pass in the chosen precision, redone in fp32 if half precision overflowed."""
        x = x.to(self.device)
        for dtype in (self.half_dtype, None) if self.half_dtype is not None else (None,):
            if stats is not None and not stats.replaying:
                stats.pairs.clear()  # a redone recording pass must not append a second set
            # A captured graph must not read autocast's cache of half-precision weights, freed when the block ends.
            autocast = torch.autocast(self.device.type, dtype=dtype, cache_enabled=not self.fast_path.cuda_graphs) \
                if dtype is not None else nullcontext()
            with autocast, cudnn_autotuned(self.fast_path.cudnn_benchmark):
                if stats is None:
                    out = self.fast_model(x, weights).float()
                else:
                    with shared_stats(self.net, stats):
                        out = self.model(x, weights).float()
            if all_finite(out):
                break
        return out


def all_finite(x: Tensor) -> bool:
    """Whether no value of ``x`` overflowed (a seam for shape-only tests, whose tensors hold no values)."""
    return bool(torch.isfinite(x).all())


def upsample(image: Tensor, size: tuple[int, int]) -> Tensor:
    """(C, h, w) -> (C, H, W), bicubic."""
    return F.interpolate(image[None], size=size, mode="bicubic", align_corners=False)[0]


def _resolve_precision(name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for a precision other than ``auto`` (``None``: plain fp32)."""
    if name == "bf16" and device.type == "cuda" and not cuda_has_bf16(device):
        raise StylizeError(f"--precision bf16: this GPU ({torch.cuda.get_device_name(device)}) has no native bf16; "
                           "use fp16")
    return HALF_DTYPES.get(name)


def _as_photo(image: Image.Image | str | Path | Tensor) -> Photo:
    """Whatever :meth:`Stylizer.apply` was given, as a decoded upright :class:`Photo`."""
    if isinstance(image, (str, Path)):
        return read_image(image)
    if isinstance(image, Image.Image):
        return photo_from_pil(image)
    if isinstance(image, Tensor):
        pixels = image.detach().float().cpu()
        if pixels.ndim == 4 and pixels.shape[0] == 1:
            pixels = pixels[0]
        if pixels.ndim != 3 or pixels.shape[0] not in (3, 4) or not math.prod(pixels.shape):
            raise StylizeError(f"expected an image tensor of shape (3, H, W) or (4, H, W), got {tuple(image.shape)}")
        return Photo(rgb=pixels[:3].clamp(0, 1), alpha=pixels[3:].clamp(0, 1) if pixels.shape[0] == 4 else None)
    raise StylizeError(f"cannot stylize a {type(image).__name__}; pass a PIL image, a file path or a tensor")
