"""One renderer, two backends: what rendering a photo is, whatever runs the network.

:class:`Renderer` is everything about rendering that does not depend on what runs the
network: ``max_size``; photos longer than the working size (``--work-size``, else the style's own) painted at it and brought
back with their detail (:func:`~stylize.apply.tiling.restore_detail`); large images
rendered in tiles that share the whole image's norm statistics; ``preserve_color`` and
``strength``; the alpha channel carried along; progress over tiles. A backend says how
to run the network once (:meth:`Renderer.run`), optionally normalized with given
statistics (a :class:`Prior`), and what its pixels are:
:class:`~stylize.apply.torch_backend.Stylizer` runs PyTorch on any device and works on
tensors, :class:`~stylize.apply.onnx_backend.OnnxStylizer` runs ONNX Runtime on a CPU and
works on numpy arrays.

The prior is what tiling and video share. Tiles replay the statistics of a pass over the
whole image (weight 1), so that every tile is normalized alike; a video frame blends its
own statistics with the previous frame's (a weight below 1, an exponential moving
average over frames), which steadies the colours (:mod:`stylize.apply.video`).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import product
from typing import Any, Generic, TypeVar

from ..config import ApplySettings, check_size
from ..io.images import Photo
from ..model.styles import StyleChoice, choose, own_work_size
from .tiling import Network, keep_chroma, mirror_pad, restore_detail, tile_margin, tile_size_for, tile_spans

Pixels = TypeVar("Pixels")
"""A backend's (C, H, W) float32 image in [0, 1]: a torch tensor or a numpy array."""


@dataclass(frozen=True)
class Prior:
    """Norm statistics to normalize with (a backend's own form, as :meth:`Renderer.run` returns
    them), and how much of them: 1 uses them as they are, below 1 blends them with the image's own."""

    stats: Any
    weight: float = 1.0


class Renderer(ABC, Generic[Pixels]):
    """Renders photos in a model's styles; a backend implements :meth:`run` and the pixel operations."""

    arrays: bool = False
    """Whether photos come as numpy arrays (``read_image(..., arrays=True)``) rather than tensors."""
    precision: str = "fp32"
    """The precision the network runs in: ``fp32``, or ``fp16`` / ``bf16`` autocast."""
    config: Network
    """The network's architecture, as far as tiling needs it."""
    on_tile: Callable[[int, int], None] | None = None
    """Called with (tiles done, tiles in all) while an image renders in tiles (progress for large photos)."""

    @property
    @abstractmethod
    def styles(self) -> list[str]:
        """The style names, in the network's order."""

    @property
    def work_sizes(self) -> Mapping[str, int]:
        """Style name -> the work size it is painted at unless ``settings.work_size`` is given
        (0: full resolution); a style without one takes :data:`~stylize.config.WORK_SIZE`."""
        return {}

    def choose(self, style: str | Mapping[str, float] | None) -> list[StyleChoice]:
        """The renderings ``style`` asks for (see :func:`stylize.model.styles.choose`)."""
        return choose(style, self.styles)

    def stylize_photo(self, photo: Photo, choice: StyleChoice, settings: ApplySettings = ApplySettings()) -> Photo:
        """A decoded photo stylized, with its alpha (resized along), ICC profile and EXIF kept.

        The photo's pixels go to the backend as they are: an 8-bit photo painted smaller than it
        is may come back as 8-bit planes (:meth:`paint_smaller`)."""
        rgb = self.stylize(photo.rgb, choice, settings)
        alpha = photo.alpha
        if alpha is not None and alpha.shape[-2:] != rgb.shape[-2:]:
            alpha = self.resize(self.pixels(alpha), max(rgb.shape[-2:]))
        return dataclasses.replace(photo, rgb=rgb, alpha=alpha)

    def stylize(self, rgb: Pixels, choice: StyleChoice, settings: ApplySettings = ApplySettings(),
                prior: Prior | None = None) -> Pixels:
        """Float (3, H, W) in [0, 1] -> stylized (3, H', W') (smaller with ``max_size``).

        ``prior``: statistics to normalize with (a video's previous frame's, at its weight).
        A backend that takes 8-bit planes (:meth:`pixels`) may return them for them.
        """
        return self._stylize(rgb, choice, settings, prior, record=False)[0]

    def stylize_with_stats(self, rgb: Pixels, choice: StyleChoice, settings: ApplySettings = ApplySettings(),
                           prior: Prior | None = None) -> tuple[Pixels, Any]:
        """:meth:`stylize`, and the norm statistics it was rendered with (``None`` with strength 0),
        to be the next video frame's prior."""
        return self._stylize(rgb, choice, settings, prior, record=True)

    def _stylize(self, rgb: Pixels, choice: StyleChoice, settings: ApplySettings, prior: Prior | None,
                 record: bool) -> tuple[Pixels, Any]:
        if settings.max_size and max(rgb.shape[-2:]) > settings.max_size:
            rgb = self.resize(self.pixels(rgb), settings.max_size)
        if settings.strength == 0:
            return self.pixels(rgb), None
        weights = self.style_weights(choice)
        own = own_work_size(choice, self.styles, self.work_sizes)
        if settings.paints_smaller(rgb.shape[-2:], own):
            out, stats = self.paint_smaller(rgb, settings.work_size_for(own), weights, settings, prior, record)
        else:
            out, stats = self.render(self.pixels(rgb), weights, settings, prior, record)
        if settings.preserve_color or settings.strength != 1:
            rgb, out = self.pixels(rgb), self.pixels(out)  # once: an 8-bit photo's floats are a full-size copy
            if settings.preserve_color:
                out = keep_chroma(rgb, out)
            if settings.strength != 1:
                out = self.blend(rgb, out, settings.strength)
        return out, stats

    def paint_smaller(self, rgb: Pixels, size: int, weights: Any, settings: ApplySettings, prior: Prior | None,
                      record: bool) -> tuple[Pixels, Any]:
        """``rgb`` painted at long side ``size`` and brought back to its own size with its detail
        (:func:`~stylize.apply.tiling.restore_detail`); the output and the statistics it used."""
        rgb = self.pixels(rgb)
        small = self.resize(rgb, size)
        out, stats = self.render(small, weights, settings, prior, record)
        return restore_detail(rgb, small, out, self.upsample), stats

    def tile_size_for(self, settings: ApplySettings) -> int:
        """The tile size to render with (0: never tile), checked against the network's smallest tile."""
        return tile_size_for(settings, self.config)

    def render(self, rgb: Pixels, weights: Any, settings: ApplySettings, prior: Prior | None,
               record: bool = False) -> tuple[Pixels, Any]:
        """The network on ``rgb``, whole or in tiles; the output and (tiled, or ``record``) the statistics it used.

        The network sees ``rgb`` mirrored by ``settings.border`` (tiles count it), and the border is
        cropped off its output: at the right and bottom edges the stride-2 convolutions sample
        lopsidedly, which training taught a colour (:data:`~stylize.config.EDGE_BORDER`). Whether to
        tile is the photo's own pixel count's question: the memory a pass needs follows its pixels, so
        a photo with no more pixels than a tile (a 1280x720 video frame for 1024 px tiles, or a tile-sized
        photo with its border) is one pass; tiling it would cost a statistics pass and overlaps.
        """
        height, width = rgb.shape[-2:]
        check_size(height, width)  # the photo's own size: a border must not let a too-small photo through
        border = settings.border
        if border:
            rgb = mirror_pad(rgb, border)
        tile = self.tile_size_for(settings)
        if not tile or height * width <= tile * tile:
            out, stats = self.run(rgb, weights, prior, record)
        else:
            out, stats = self.tiled(rgb, weights, tile, settings, prior)
        return out[:, border:border + height, border:border + width], stats

    def tiled(self, rgb: Pixels, weights: Any, tile: int, settings: ApplySettings,
              prior: Prior | None) -> tuple[Pixels, Any]:
        """Statistics from the whole image (or a copy downscaled to ``settings.stats_size``), then every
        tile normalized with them.

        With shared statistics the network is translation-equivariant, so a pixel comes out
        the same from any tile that holds its receptive field: tiles overlap by twice
        :func:`~stylize.apply.tiling.tile_margin` and each keeps only the middle of its
        overlaps, so no seam can show.
        """
        _, height, width = rgb.shape
        stats_size = tile if settings.stats_size is None else settings.stats_size
        probe = rgb if not stats_size or max(height, width) <= stats_size else self.resize(rgb, stats_size)
        _, stats = self.run(probe, weights, prior, record=True)
        shared = Prior(stats, 1.0)
        margin = tile_margin(self.config)
        out = self.empty(height, width)
        tiles = list(product(tile_spans(height, tile, margin), tile_spans(width, tile, margin)))
        for done, ((y0, y1, top, bottom), (x0, x1, left, right)) in enumerate(tiles, 1):
            piece, _ = self.run(rgb[:, y0:y1, x0:x1], weights, shared, record=False)
            out[:, top:bottom, left:right] = piece[:, top - y0:bottom - y0, left - x0:right - x0]
            if self.on_tile is not None:
                self.on_tile(done, len(tiles))
        return out, stats

    @abstractmethod
    def run(self, rgb: Pixels, weights: Any, prior: Prior | None, record: bool) -> tuple[Pixels, Any]:
        """One pass of the network: the stylized (3, H, W) and the statistics it normalized with
        (with ``record``, or a ``prior``; a backend may leave them out otherwise, if that is faster)."""

    @abstractmethod
    def pixels(self, image: Any) -> Pixels:
        """``image`` as this backend's float32 pixels on the CPU."""

    @abstractmethod
    def style_weights(self, choice: StyleChoice) -> Any:
        """The network's style input for ``choice`` (a (1, S) row of mixing weights)."""

    @abstractmethod
    def resize(self, image: Pixels, size: int) -> Pixels:
        """``image`` resized so that its long side is ``size`` (antialiased when shrinking)."""

    @abstractmethod
    def upsample(self, image: Pixels, size: tuple[int, int]) -> Pixels:
        """(C, h, w) -> (C, H, W), bicubic."""

    @abstractmethod
    def empty(self, height: int, width: int) -> Pixels:
        """An uninitialized (3, H, W) output."""

    @abstractmethod
    def blend(self, photo: Pixels, stylized: Pixels, strength: float) -> Pixels:
        """``photo`` moved ``strength`` of the way toward ``stylized``."""
