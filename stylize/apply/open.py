"""Opening a model to render with: which backend renders, and the renderer on it.

ONNX Runtime renders on a CPU in fp32 when it is installed, in a process that never
imports PyTorch (:mod:`stylize.apply.onnx_backend`); PyTorch renders everything else
(GPUs, half precision, torchrun, a style learned from a picture first). This
module imports neither at import time, so a caller that ends up on ONNX Runtime never
loads torch.
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
    from .onnx_backend import OnnxStylizer
    from .renderer import Renderer
    from .torch_backend import Stylizer


def uses_onnx(backend: str, device: str, precision: str, *, torch_only: str | None = None) -> bool:
    """Whether ONNX Runtime renders, for ``backend`` (auto, torch or onnx) on ``device`` in ``precision``.

    ``torch_only`` names what the run needs that only PyTorch does (``--style-image``,
    torchrun), if anything: ``auto`` then renders with PyTorch and ``onnx`` is refused.
    """
    from .onnx_backend import onnx_backend_applies

    use = onnx_backend_applies(backend, device, precision)
    if use and torch_only:
        if backend == "onnx":
            raise StylizeError(f"--backend onnx renders photos in one process; {torch_only} run on torch")
        return False
    return use


def open_onnx(model: Path | None, on_make_graph: Callable[[Path], None] | None = None) -> OnnxStylizer:
    """The ONNX Runtime renderer for ``model``, with the thread count PyTorch would use.

    ``on_make_graph(model)`` is called when the model's graph has to be made first (a
    user's model, the first time; see :func:`stylize.apply.graphs.open_graph`).
    """
    from .onnx_backend import OnnxStylizer, default_threads

    return OnnxStylizer.load(model, threads=default_threads(), on_make=on_make_graph)


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
def open_with_style_image(model: Path | None, style_image: Path, photos: Sequence[Path | str], *,
                          save_to: Path | None = None, overwrite: bool = False, device: str = "auto",
                          precision: str = "auto", engine: EngineOptions | None = EngineOptions(),
                          steps: int | None = None, on_device: Callable[[DeviceChoice], None] | None = None,
                          on_step: Callable[[StepReport], None] | None = None) -> Stylizer:
    """``model`` plus the style of any picture, learned on ``photos`` (or cached), on PyTorch.

    The new style is the renderer's last. ``save_to``, if given, receives the model with
    it (an existing file only with ``overwrite``; one that another live run writes, never).
    ``steps``: learning steps (``None``: the device's quick recipe). Ctrl-C raises
    KeyboardInterrupt and writes nothing.
    """
    require("train", "--style-image")
    from ..io.weights import default_model
    from ..model import checkpoint
    from ..model.edits import check_output
    from ..train.finetune import Overrides, learn_style
    from .torch_backend import Stylizer

    if STDIO in photos:
        raise StylizeError("--style-image learns on the photos, but '-' (stdin) can be read only once; "
                           "pass --content FOLDER of photos to learn on")
    path = model or default_model()
    if save_to is not None:
        check_output(path, save_to, overwrite=overwrite)
    where = torch_device(device, on_device)
    learned = learn_style(checkpoint.load(path, map_location=where), style_image, [Path(p) for p in photos],
                          overrides=Overrides(steps=steps), device=where, on_step=on_step)
    if save_to is not None:
        checkpoint.save(save_to, learned, overwrite=overwrite)
    return Stylizer(learned.net, learned.styles, device=where, precision=precision, engine=engine,
                    work_sizes=learned.work_sizes)
