"""Applying styles on a CPU with ONNX Runtime, in a process that never imports PyTorch.

For one photo on a CPU, most of ``stylize apply``'s time and memory went to PyTorch
itself: importing it takes longer than the small network needs for a 1024 px photo, and
its libraries dominate the peak memory. ONNX Runtime, numpy and Pillow start in a
fraction of that. So on a CPU ``apply`` runs the model's ONNX graph
(:mod:`stylize.model.onnx_export`, the textbook network with its norm statistics as inputs
and outputs): the shipped models' graphs ship beside them, a user's model gets its graph
made once and cached (:mod:`stylize.apply.graphs`); applying then loads only ONNX Runtime,
which opens the graph's optimized form from its own cache (:mod:`stylize.apply.sessions`).

Everything else is the :class:`~stylize.apply.renderer.Renderer` both backends share, on
numpy arrays: the graph takes norm statistics as a prior (its ``prior_*`` inputs) and
outputs those it used, so tiles get the whole image's statistics at weight 1 and video
frames the previous frame's at the smoothing weight, as on PyTorch.

A style learned from a picture (``--style-image``, :class:`LearnedStyle`) is not in the
graph, whose ``style`` input has one weight per shipped style. It renders in the place of
one of them: its (gamma, beta) rows replace that style's row of every norm tensor (the
graph's ``net.<key>`` initializers, overridden when the session is made, in memory; the
graph's bytes are never changed), and its weight goes to that row. So the row it
borrows cannot be rendered in the same run (:func:`borrowed_row` picks one no other
requested style uses).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from ..config import AUTO_TILE_ONNX, BACKENDS, ApplySettings, check_size
from ..errors import StylizeError
from ..io.pixels import as_float, bands_to_array, long_side_size, to_uint8
from ..io.weights import default_model
from ..model.header import check_work_sizes, layer_kind
from ..model.styles import StyleChoice, choose
from .graphs import open_graph
from .sessions import describe, open_session
from .renderer import Prior, Renderer
from .tiling import luma, tile_size_for


@dataclass(frozen=True)
class GraphConfig:
    """What tiling needs to know of the exported network (from the graph's metadata; see
    :class:`~stylize.config.NetConfig`, which this torch-free side cannot import)."""

    n_residual: int
    outer_kernel: int
    full_res: bool
    upsample: str

    @classmethod
    def from_json(cls, text: str) -> "GraphConfig":
        """The config in a graph's metadata; graphs made before the layer kinds existed get the defaults."""
        config = json.loads(text)
        return cls(n_residual=int(config["n_residual"]),
                   **{key: layer_kind(config, key) for key in ("outer_kernel", "full_res", "upsample")})


def cpu_only() -> bool:
    """Whether ``--device auto`` would pick the CPU, told without importing torch.

    It picks CUDA where an NVIDIA driver is loaded and MPS on macOS; this errs toward
    PyTorch (a driver without a usable GPU), which is slower but renders the same.
    """
    return sys.platform != "darwin" and not Path("/proc/driver/nvidia/version").exists()


def onnx_backend_applies(backend: str, device: str, precision: str) -> bool:
    """Whether ``apply --backend BACKEND --device DEVICE --precision PRECISION`` runs on ONNX Runtime.

    ``auto`` does on a CPU in fp32, and wherever PyTorch is not installed (the plain
    install); ``onnx`` insists (and fails clearly where it cannot); ``torch`` never does.
    """
    if backend not in BACKENDS:
        raise StylizeError(f"--backend {backend}: choose one of {', '.join(BACKENDS)}")
    if backend == "torch":
        return False
    on_cpu = device == "cpu" or (device == "auto" and cpu_only())
    if backend == "onnx":
        if not on_cpu or precision not in ("auto", "fp32"):
            raise StylizeError("--backend onnx runs on the CPU in fp32 (--device cpu, --precision fp32)")
        return True
    from importlib.util import find_spec

    if precision not in ("auto", "fp32") or device not in ("auto", "cpu"):
        return False
    return find_spec("torch") is None or (on_cpu and find_spec("onnxruntime") is not None)


GRAPH_PREFIX = "net."
"""The exported graph's name of checkpoint tensor ``key`` is ``net.<key>``
(:class:`~stylize.model.onnx_export.StatsGraph`)."""


@dataclass(frozen=True)
class LearnedStyle:
    """A style learned from a picture, rendered on a graph that lacks it in the place of style ``row``.

    ``initializers``: the graph's norm tensors (``net.<key>``, (S, C)) with row ``row``
    replaced by the learned style's; made by :meth:`make`.
    """

    name: str
    row: int
    initializers: dict[str, np.ndarray]

    @classmethod
    def make(cls, name: str, row: int, rows: Mapping[str, np.ndarray],
             weights: Mapping[str, np.ndarray]) -> "LearnedStyle":
        """``rows``: the learned (1, C) row per norm tensor; ``weights``: the model's (S, C) tensors (float32)."""
        initializers = {}
        for key, learned in rows.items():
            matrix = np.array(weights[key], np.float32)
            matrix[row] = learned[0]
            initializers[GRAPH_PREFIX + key] = matrix
        return cls(name, row, initializers)


def borrowed_row(style: str | None, styles: list[str], name: str) -> int:
    """The row of ``styles`` (a graph's) that learned style ``name`` can take when ``style`` is asked for
    (``None``: the learned style alone): the first that no requested rendering uses; a one-line
    error if none is free."""
    used = {i for choice in choose(style or name, [*styles, name]) for i, w in enumerate(choice.weights) if w > 0}
    free = [i for i in range(len(styles)) if i not in used]
    if not free:
        raise StylizeError(f"on ONNX Runtime a style learned from a picture takes the place of one of the model's "
                           f"{len(styles)} styles, and --style {style} asks for all of them; use --backend torch")
    return free[0]


class OnnxStylizer(Renderer[np.ndarray]):
    """:class:`~stylize.apply.torch_backend.Stylizer`'s rendering on ONNX Runtime, on numpy arrays."""

    arrays = True
    """Takes photos as numpy arrays (``read_image(..., arrays=True)``)."""
    precision = "fp32"
    """The precision the graph runs in (as :attr:`Stylizer.precision <stylize.apply.torch_backend.Stylizer.precision>`)."""
    device = "cpu"

    def __init__(self, graph: Path | bytes, threads: int | None = None, learned: LearnedStyle | None = None) -> None:
        """The stylizer of an ONNX graph (a file or its bytes), with a ``learned`` style if given;
        a one-line error if it is none of ours."""
        self.learned = learned
        initializers = learned.initializers if learned is not None else {}
        data = graph.read_bytes() if isinstance(graph, Path) and initializers else graph
        missing = [key for key in initializers if isinstance(data, bytes) and key.encode() not in data]
        if missing:
            raise StylizeError(f"{describe(graph)}: no tensor {missing[0]} to render a learned style with; "
                               "use --backend torch")
        self.session = open_session(data, threads, initializers)
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        """The graph's metadata: styles, their work sizes, config, and the checkpoint it was made from (:mod:`stylize.apply.graphs`)."""
        try:
            self._styles = [str(s) for s in json.loads(self.metadata["styles"])]
            self.config = GraphConfig.from_json(self.metadata["config"])
            sizes = json.loads(self.metadata.get("work_sizes", "{}"))
        except (KeyError, ValueError, TypeError, RecursionError) as exc:
            raise StylizeError(f"{describe(graph)}: not a stylize ONNX graph ({type(exc).__name__})") from None
        try:
            self._work_sizes = check_work_sizes(sizes, self._styles)
        except StylizeError as exc:
            raise StylizeError(f"{describe(graph)}: bad graph metadata: {exc}") from None

    @classmethod
    def load(cls, model: str | Path | None = None, threads: int | None = None,
             on_make: Callable[[Path], None] | None = None, learned: LearnedStyle | None = None) -> "OnnxStylizer":
        """The stylizer for checkpoint ``model`` (default: the shipped one), from its graph, with a ``learned`` style.

        The graph ships beside the model or is cached; else it is made (needs PyTorch),
        after a call of ``on_make(model)`` (see :func:`stylize.apply.graphs.open_graph`).
        """
        return open_graph(Path(model) if model is not None else default_model(),
                          lambda data: cls(data, threads, learned), on_make)

    @property
    def styles(self) -> list[str]:
        """The graph's styles, then the learned one (if any)."""
        return [*self._styles, *([self.learned.name] if self.learned is not None else [])]

    @property
    def work_sizes(self) -> dict[str, int]:
        return dict(self._work_sizes)

    def tile_size_for(self, settings: ApplySettings) -> int:
        """As the base's, with :data:`~stylize.config.AUTO_TILE_ONNX` when no size is asked for."""
        return tile_size_for(settings, self.config, AUTO_TILE_ONNX)

    def run(self, rgb: np.ndarray, weights: np.ndarray, prior: Prior | None,
            record: bool) -> tuple[np.ndarray, tuple]:
        """One pass; the statistics are the graph's (mean, var) outputs (always: they cost nothing),
        fed back as its prior inputs."""
        check_size(*rgb.shape[-2:])
        feed = {"image": np.ascontiguousarray(rgb[None]), "style": weights}
        if prior is not None:
            mean, var = prior.stats
            feed.update(prior_mean=mean, prior_var=var, prior_weight=np.array(prior.weight, np.float32))
        stylized, mean, var = self.session.run(None, feed)
        return stylized[0], (mean, var)

    def pixels(self, image: np.ndarray) -> np.ndarray:
        return as_float(np.asarray(image))

    def paint_smaller(self, rgb: np.ndarray, size: int, weights: np.ndarray, settings: ApplySettings,
                      prior: Prior | None, record: bool) -> tuple[np.ndarray, tuple]:
        """As the base's; an 8-bit photo is shrunk and given its detail back on its 8-bit planes
        (:func:`restore_detail_8bit`), so that none of its full-size planes becomes floats."""
        if rgb.dtype != np.uint8:
            return super().paint_smaller(rgb, size, weights, settings, prior, record)
        photo = Image.merge("RGB", [Image.fromarray(plane) for plane in rgb])
        small = bands_to_array(photo.resize(long_side_size(photo.height, photo.width, size)[::-1], Image.BILINEAR))
        out, stats = self.render(small, weights, settings, prior, record)
        return restore_detail_8bit(photo, small, out), stats

    def style_weights(self, choice: StyleChoice) -> np.ndarray:
        """The graph's ``style`` input; a learned style's weight goes to the row it borrows."""
        weights = list(choice.weights)
        if self.learned is not None:
            share, row = weights.pop(), self.learned.row
            if share > 0 and weights[row] > 0:
                raise StylizeError(f"style {self._styles[row]} cannot be rendered with {self.learned.name} on "
                                   "ONNX Runtime (the learned style takes its place); use --backend torch")
            weights[row] = max(weights[row], share)
        return np.asarray([weights], dtype=np.float32)

    def resize(self, image: np.ndarray, size: int) -> np.ndarray:
        return resize_long_side(image, size)

    def upsample(self, image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        return upsample(image, size)

    def empty(self, height: int, width: int) -> np.ndarray:
        return np.empty((3, height, width), np.float32)

    def blend(self, photo: np.ndarray, stylized: np.ndarray, strength: float) -> np.ndarray:
        return photo + (stylized - photo) * np.float32(strength)


def resize_long_side(image: np.ndarray, size: int) -> np.ndarray:
    """(C, H, W) float32 resized so its long side is ``size`` (bilinear, antialiased by Pillow).

    The same output size as :func:`stylize.io.pixels.resize_long_side` (both
    :func:`~stylize.io.pixels.long_side_size`), and nearly the same pixels (both filter with a
    widened triangle when shrinking).
    """
    new_h, new_w = long_side_size(*image.shape[-2:], size)
    planes = [np.asarray(Image.fromarray(np.ascontiguousarray(plane)).resize((new_w, new_h), Image.BILINEAR))
              for plane in image.astype(np.float32, copy=False)]
    resized = np.stack(planes)
    return np.clip(resized, 0, 1, out=resized)


def restore_detail_8bit(photo: Image.Image, small_photo: np.ndarray, small_stylized: np.ndarray) -> np.ndarray:
    """:func:`~stylize.apply.tiling.restore_detail` for an 8-bit RGB ``photo``: its ``uint8`` planes.

    The stylized image and the small photo's luma go up together, as the four bands of one
    8-bit image (Pillow's bicubic filter in integers), and the photo's luma detail, ``luma(photo)
    - upsampled luma(small_photo)``, is added in integers. Rounding each term to 8 bits keeps the
    result within a level or two of the float path's, at a fraction of its cost: a photo's
    full-size planes are never floats.
    """
    planes = np.empty((4, *small_photo.shape[-2:]), np.uint8)
    planes[:3] = to_uint8(small_stylized)
    planes[3] = to_uint8(luma(small_photo))[0]
    up = Image.merge("RGBX", [Image.fromarray(plane) for plane in planes]).resize(photo.size, Image.BICUBIC)
    red, green, blue, small_luma = (np.asarray(band, np.int16) for band in up.split())
    detail = np.asarray(photo.convert("L"), np.int16) - small_luma
    out = np.empty((3, photo.height, photo.width), np.uint8)
    for plane, band in zip(out, (red, green, blue)):
        band += detail
        plane[...] = np.clip(band, 0, 255, out=band)
    return out


def upsample(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(C, h, w) float32 -> (C, H, W), bicubic (Pillow)."""
    height, width = size
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(plane)).resize((width, height), Image.BICUBIC))
                     for plane in image.astype(np.float32, copy=False)])


def default_threads() -> int | None:
    """``OMP_NUM_THREADS`` if set (as PyTorch honours it), else ONNX Runtime's own choice."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else None
