"""Opening a model to render with: which backend renders, and the renderer on it.

ONNX Runtime renders on a CPU in fp32 when it is installed, in a process that never
imports PyTorch (:mod:`stylize.apply.onnx_backend`); PyTorch renders everything else
(GPUs, half precision, torchrun). This module imports neither at import time, so a
caller that ends up on ONNX Runtime never loads torch.

A style learned from a picture (``--style-image``) is learned with PyTorch, once; on
ONNX Runtime it is then found in the cache without PyTorch (:mod:`stylize.io.style_cache`)
and rendered in the place of a style the run does not use
(:class:`~stylize.apply.onnx_backend.LearnedStyle`), as fast as a shipped style.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import StylizeError
from ..io.lock import writes
from ..runtime.extras import require
from ..runtime.process import EngineOptions
from .plan import STDIO

if TYPE_CHECKING:
    import torch

    from ..runtime.device import DeviceChoice
    from ..train.loop import StepReport
    from ..model.checkpoint import Checkpoint
    from .onnx_backend import LearnedStyle, OnnxStylizer
    from .renderer import Renderer
    from .torch_backend import Stylizer


def uses_onnx(backend: str, device: str, precision: str, *, torch_only: str | None = None) -> bool:
    """Whether ONNX Runtime renders, for ``backend`` (auto, torch or onnx) on ``device`` in ``precision``.

    ``torch_only`` names what the run needs that only PyTorch does (torchrun), if anything:
    ``auto`` then renders with PyTorch and ``onnx`` is refused.
    """
    from .onnx_backend import onnx_backend_applies

    use = onnx_backend_applies(backend, device, precision)
    if use and torch_only:
        if backend == "onnx":
            raise StylizeError(f"--backend onnx renders photos in one process; {torch_only} run on torch")
        return False
    return use


def open_onnx(model: Path | None, on_make_graph: Callable[[Path], None] | None = None,
              learned: LearnedStyle | None = None) -> OnnxStylizer:
    """The ONNX Runtime renderer for ``model`` (with a ``learned`` style), with the thread count PyTorch would use.

    ``on_make_graph(model)`` is called when the model's graph has to be made first (a
    user's model, the first time; see :func:`stylize.apply.graphs.open_graph`).
    """
    from .onnx_backend import OnnxStylizer, default_threads

    return OnnxStylizer.load(model, threads=default_threads(), on_make=on_make_graph, learned=learned)


def torch_device(device: str, on_device: Callable[[DeviceChoice], None] | None = None) -> torch.device:
    """``device`` resolved (this torchrun rank's under torchrun); ``on_device`` hears the choice and why."""
    require("torch", "rendering with PyTorch (a GPU, --backend torch, --precision bf16/fp16, torchrun)")
    from ..runtime import distributed
    from ..runtime.device import choose_device

    choice = choose_device(device)
    if on_device is not None:
        on_device(choice)
    return distributed.init_from_env(choice.device)


def open_renderer(model: Path | None = None, *, backend: str = "auto", device: str = "auto",
                  precision: str = "auto", engine: EngineOptions | None = EngineOptions(),
                  torch_only: str | None = None, on_device: Callable[[DeviceChoice], None] | None = None,
                  on_make_graph: Callable[[Path], None] | None = None) -> Renderer:
    """A renderer for ``model`` (default: the shipped one) on the backend that applies (:func:`uses_onnx`).

    ``on_device`` hears PyTorch's device choice, ``on_make_graph`` that ONNX Runtime's graph is being made.
    """
    if uses_onnx(backend, device, precision, torch_only=torch_only):
        return open_onnx(model, on_make_graph)
    where = torch_device(device, on_device)
    from .torch_backend import Stylizer

    return Stylizer.load(model, device=where, precision=precision, engine=engine)


@writes("save_to")
def learn_from_image(model: Path, style_image: Path, photos: Sequence[Path | str], *, save_to: Path | None = None,
                     overwrite: bool = False, device: str = "auto", steps: int | None = None,
                     on_device: Callable[[DeviceChoice], None] | None = None,
                     on_step: Callable[[StepReport], None] | None = None) -> tuple[Checkpoint, torch.device]:
    """``model`` plus the style of ``style_image`` (learned on ``photos``, or cached), and the device it is on.

    ``save_to``, if given, receives the result (an existing file only with ``overwrite``; one
    that another live run writes never).
    ``steps``: learning steps (``None``: the device's quick recipe). Ctrl-C raises
    KeyboardInterrupt and writes nothing.
    """
    require("train", "--style-image")
    from ..model import checkpoint
    from ..train.finetune import Overrides, learn_style

    where = torch_device(device, on_device)
    learned = learn_style(checkpoint.load(model, map_location=where), style_image, [Path(p) for p in photos],
                          overrides=Overrides(steps=steps), device=where, on_step=on_step)
    if save_to is not None:
        checkpoint.save(save_to, learned, overwrite=overwrite)
    return learned, where


def check_style_image_job(model: Path | None, photos: Sequence[Path | str], save_to: Path | None,
                          overwrite: bool) -> Path:
    """The model a ``--style-image`` run learns on (default: the shipped one), once its outputs are checked."""
    from ..io.weights import default_model

    if STDIO in photos:
        raise StylizeError("--style-image learns on the photos, but '-' (stdin) can be read only once; "
                           "pass --content FOLDER of photos to learn on")
    path = model or default_model()
    if save_to is not None:  # a checkpoint is saved with PyTorch anyway
        require("train", "--save-style-to")
        from ..model.edits import check_output

        check_output(path, save_to, overwrite=overwrite)
    return path


def open_with_style_image(model: Path | None, style_image: Path, photos: Sequence[Path | str], *,
                          save_to: Path | None = None, overwrite: bool = False, device: str = "auto",
                          precision: str = "auto", engine: EngineOptions | None = EngineOptions(),
                          steps: int | None = None, on_device: Callable[[DeviceChoice], None] | None = None,
                          on_step: Callable[[StepReport], None] | None = None) -> Stylizer:
    """``model`` plus the style of any picture, learned on ``photos`` (or cached), on PyTorch
    (see :func:`learn_from_image`); the new style is the renderer's last."""
    path = check_style_image_job(model, photos, save_to, overwrite)
    learned, where = learn_from_image(path, style_image, photos, save_to=save_to, overwrite=overwrite,
                                      device=device, steps=steps, on_device=on_device, on_step=on_step)
    from .torch_backend import Stylizer

    return Stylizer(learned.net, learned.styles, device=where, precision=precision, engine=engine,
                    work_sizes=learned.work_sizes)


def open_onnx_with_style_image(model: Path | None, style_image: Path, photos: Sequence[Path | str], *,
                               style: str | None = None, save_to: Path | None = None, overwrite: bool = False,
                               steps: int | None = None, on_make_graph: Callable[[Path], None] | None = None,
                               on_step: Callable[[StepReport], None] | None = None) -> OnnxStylizer:
    """``model`` plus the style of any picture on ONNX Runtime; the new style is the renderer's last.

    A cached style (:mod:`stylize.io.style_cache`, same key as :func:`learn_from_image` on
    the CPU) that renders its painting as a picture is used without importing PyTorch;
    otherwise (or with ``save_to``) it is learned on PyTorch first. It takes the place of
    the first style that ``style`` (``None``: the learned one alone) does not use.
    """
    from ..io.images import read_image
    from ..io.style_cache import broken_rendering, model_weights, probe, read_rows, style_key
    from ..model.header import read_header
    from ..model.styles import StyleChoice, free_name
    from ..train.recipe import Overrides, quick_settings
    from .onnx_backend import LearnedStyle, borrowed_row

    path = check_style_image_job(model, photos, save_to, overwrite)
    painting = probe(read_image(style_image, arrays=True).rgb)[0]  # a painting that cannot be read: its error first
    meta = read_header(path).meta
    name = free_name(Path(style_image).stem, meta["styles"])
    row = borrowed_row(style, meta["styles"], name)
    weights = model_weights(path)
    if weights is not None and save_to is None:
        settings = quick_settings(meta.get("training", {}), "cpu", Overrides(steps=steps))
        rows = read_rows(style_key(weights, Path(style_image), settings, None), weights)
        if rows is not None:
            stylizer = open_onnx(path, on_make_graph, LearnedStyle.make(name, row, rows, weights))
            only = StyleChoice(name, tuple(float(s == name) for s in stylizer.styles))
            if broken_rendering(stylizer.run(painting, stylizer.style_weights(only), None, False)[0][None]) is None:
                return stylizer
    learned, _ = learn_from_image(path, style_image, photos, save_to=save_to, overwrite=overwrite, device="cpu",
                                  steps=steps, on_step=on_step)  # checks that the train extra is installed
    from ..train.finetune import learned_rows

    rows, state = learned_rows(learned), learned.net.state_dict()
    base = {key: state[key][:-1].float().cpu().numpy() for key in rows}
    return open_onnx(path, on_make_graph, LearnedStyle.make(name, row, rows, base))
