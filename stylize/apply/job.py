"""One ``apply`` run from start to end, as the command line runs it, for any program to run.

:func:`apply` opens the model on the backend that applies (:mod:`stylize.apply.open`),
first learning a ``style_image``'s style if one is given, plans where every output goes
(:mod:`stylize.apply.plan`), takes this torchrun rank's share, renders it
(:mod:`stylize.apply.batch`) and merges every rank's results. The first photo is decoded
while the model opens (:class:`~stylize.apply.batch.EarlyRead`). It reports through the
callbacks of :class:`Hooks` and never prints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ..config import ApplySettings, BatchOptions, VideoSettings
from ..errors import StylizeError
from ..runtime import distributed
from ..runtime.process import EngineOptions
from . import batch
from .open import open_onnx_with_style_image, open_renderer, open_with_style_image, uses_onnx
from .plan import check_folders, plan

if TYPE_CHECKING:
    from ..runtime.device import DeviceChoice
    from ..train.loop import StepReport
    from .batch import Result, Summary
    from .renderer import Renderer


@dataclass(frozen=True)
class ApplyJob:
    """What to apply, to which inputs, where to, and how: ``stylize apply``'s options as values.

    ``inputs``: photos, folders or ``-`` (stdin); ``output``: a file, a folder, ``-`` or
    ``None`` (names beside the inputs, see :mod:`stylize.apply.plan`). ``style_image``:
    any picture whose style is learned first (on ``content``, else on the inputs) and
    applied, in ``style_steps`` (default: the device's quick recipe); ``save_style_to`` keeps the
    model with it.
    """

    inputs: Sequence[str]
    output: str | None = None
    style: str | None = None
    model: Path | None = None
    settings: ApplySettings = ApplySettings()
    options: BatchOptions = BatchOptions()
    video: VideoSettings = VideoSettings()
    backend: str = "auto"
    device: str = "auto"
    precision: str = "auto"
    engine: EngineOptions | None = EngineOptions()
    style_image: Path | None = None
    content: Path | None = None
    save_style_to: Path | None = None
    style_steps: int | None = None

    def __post_init__(self) -> None:
        if self.style_image is None and (self.content, self.save_style_to, self.style_steps) != (None, None, None):
            raise StylizeError("--content, --save-style-to and --style-steps go with --style-image")

    @staticmethod
    def torch_only(world_size: int) -> str | None:
        """What in this job only PyTorch renders (``None``: nothing; ONNX Runtime may render it)."""
        return "torchrun" if world_size > 1 else None


@dataclass
class Hooks:
    """How :func:`apply` reports while it runs; every callback is optional.

    ``on_device``: the device chosen for PyTorch, and why. ``on_make_graph(model)``: the model's
    ONNX graph is being made (once, for a model that ships none). ``on_step``: a step of learning a
    ``style_image``'s style. ``on_start(renderer, outputs)``: the model is open and this
    rank has that many outputs to make. ``on_result``: one output made, skipped or failed.
    ``on_frame(result, done, total)``: video frames. ``on_tile(done, total)``: tiles of a
    large photo.
    """

    on_device: Callable[[DeviceChoice], None] | None = None
    on_make_graph: Callable[[Path], None] | None = None
    on_step: Callable[[StepReport], None] | None = None
    on_start: Callable[[Renderer, int], None] | None = None
    on_result: Callable[[Result], None] | None = None
    on_frame: Callable[[Result, int, int | None], None] | None = None
    on_tile: Callable[[int, int], None] | None = None
    streams: dict[str, BinaryIO] = field(default_factory=dict)
    """``stdin`` / ``stdout``: the streams for the input and output ``-``."""


def open_for(job: ApplyJob, hooks: Hooks = Hooks()) -> tuple[Renderer, str | None]:
    """The renderer ``job`` runs on, and the style to render (a learned style's name by default)."""
    _, world_size = distributed.world()
    torch_only = job.torch_only(world_size)
    if job.style_image is None:
        return open_renderer(job.model, backend=job.backend, device=job.device, precision=job.precision,
                             engine=job.engine, torch_only=torch_only, on_device=hooks.on_device,
                             on_make_graph=hooks.on_make_graph), job.style
    photos = [job.content] if job.content is not None else list(job.inputs)
    renderer: Renderer
    if uses_onnx(job.backend, job.device, job.precision, torch_only=torch_only):
        renderer = open_onnx_with_style_image(job.model, job.style_image, photos, style=job.style,
                                              save_to=job.save_style_to, overwrite=job.options.overwrite,
                                              steps=job.style_steps, on_make_graph=hooks.on_make_graph,
                                              on_step=hooks.on_step)
    else:
        renderer = open_with_style_image(job.model, job.style_image, photos, save_to=job.save_style_to,
                                         overwrite=job.options.overwrite, device=job.device, precision=job.precision,
                                         engine=job.engine, steps=job.style_steps, on_device=hooks.on_device,
                                         on_step=hooks.on_step)
    return renderer, job.style or renderer.styles[-1]


def apply(job: ApplyJob, hooks: Hooks = Hooks()) -> Summary:
    """Run ``job``: every output made, skipped (it exists) or failed, on this rank and the others.

    Under torchrun every rank renders its share and gets the merged summary back. An input
    that fails is reported in the summary and the run goes on; an error that stops every
    output (no model, an unwritable ``-o``) raises :class:`~stylize.errors.StylizeError`.
    """
    rank, world_size = distributed.world()
    with batch.EarlyRead(job.inputs[0] if job.inputs and world_size == 1 else None, job.options) as early:
        renderer, style = open_for(job, hooks)
        tasks = plan(job.inputs, job.output, renderer.choose(style), job.options)
        mine = distributed.shard(tasks, rank, world_size, key=lambda task: task.key)
        check_folders(mine)
        if hooks.on_start is not None:
            hooks.on_start(renderer, sum(len(task.outputs) for task in mine))
        renderer.on_tile = hooks.on_tile
        summary = batch.run(renderer, mine, job.settings, job.options, stdin=hooks.streams.get("stdin"),
                            stdout=hooks.streams.get("stdout"), on_result=hooks.on_result, video=job.video,
                            on_frame=hooks.on_frame, early=early)
    merged = batch.Summary.merge(distributed.gather(summary))
    distributed.close()
    return merged
