"""Training a multi-style network: one readable loop.

``train()`` builds everything from two folders and calls ``fit()``; ``fit()`` is the
loop itself and is shared with ``add-style``, which trains only the new styles'
(gamma, beta) on a network whose other weights are frozen.

The loop is built to never lose work: checkpoints are written atomically every
``checkpoint_every`` steps and at the end, with the optimizer state, so ``--resume``
continues the same step count and data sequence; Ctrl-C saves and returns; a
non-finite loss stops the run *without* overwriting the last good checkpoint.

Under ``torchrun`` (WORLD_SIZE > 1) the network is wrapped in DistributedDataParallel,
each rank takes its slice of the same global batch (see :mod:`stylize.train.data`), and only
rank 0 writes files and reports progress. The loss terms and a stop flag are all-reduced
every step, so a NaN or a Ctrl-C on any rank stops every rank at the same step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader

from ..config import PRESETS, TrainSettings
from ..errors import StylizeError, StylizeWarning, first_line
from ..io.lock import writer_lock
from ..model import checkpoint as ckpt_io
from ..model.engine import FastStyleNet
from ..model.network import StyleNet
from ..runtime import distributed
from ..runtime.device import device_scope, resolve_device
from ..runtime.distributed import data_parallel, init_from_env
from ..runtime.precision import training_precision
from .data import ContentPhotos, load_styles
from .anchor import TeacherAnchor, load_teacher
from .lattice import LatticePenalty
from .loss import PerceptualLoss
from .previews import preview_image, write_preview
from .ranks import StopRequest, agree, ignore_sigint, leaves_process_group
from .resume import check_resumable, check_steps_left, load_initial, preset_of
from .seed import keeps_random_stream


@dataclass
class StepReport:
    """What the loop tells its caller after each step (for a progress bar)."""

    step: int
    steps: int
    images_per_s: float
    lr: float
    losses: dict[str, float]


@dataclass
class TrainResult:
    step: int
    interrupted: bool
    losses: dict[str, float]
    checkpoint: Path
    out_of_time: bool = False
    """Stopped (and saved) because ``time_limit`` ran out, not because of Ctrl-C."""


class TrainingDiverged(StylizeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class Guard(Protocol):
    """What :func:`fit` asks of ``Job.guard``: either check raises :class:`TrainingDiverged` to stop, nothing written."""

    def check_loss(self, step: int, losses: dict[str, float]) -> None:
        """``losses`` (agreed across ranks) were measured on the weights as they are after ``step`` steps."""

    def check_weights(self, step: int) -> None:
        """Called before the weights of ``step`` are written."""


@dataclass
class Job:
    """A network and what to train it on, as ``fit()`` needs it.

    ``style_ids[i]`` is the network's style index of the i-th painting in the loss;
    for plain training it is ``0..n-1``, for ``add-style`` only the new indices.
    ``content_dir`` is a folder of photos, or a list of photo files (learning a style
    on the very photos being stylized).
    """

    net: StyleNet
    styles: list[str]
    style_images: list[Tensor]
    style_ids: Tensor
    params: list[nn.Parameter]
    output: Path
    content_dir: Path | list[Path]
    settings: TrainSettings
    start_step: int = 0
    optimizer_state: dict | None = None
    preview_photo: Tensor | None = None
    metadata: dict = field(default_factory=dict)
    guard: Guard | None = None
    """Checks each step's loss and the weights before each save (new style rows: :class:`stylize.train.divergence.RowGuard`)."""
    teacher: nn.Module | None = None
    """A model to stay near (:class:`stylize.train.anchor.TeacherAnchor`), weighted by ``settings.weights.teacher``."""


class _PerStyle:
    """Each style's mean style loss over the steps since the last log line (this rank's samples).

    Sums stay on the device and are read once per log line, so logging them costs no
    synchronisation per step.
    """

    def __init__(self, names: list[str], device: torch.device) -> None:
        self.names = names
        self.sums = torch.zeros(len(names), device=device)
        self.counts = torch.zeros(len(names), device=device)

    def add(self, styles: Tensor, losses: Tensor) -> None:
        self.sums.index_add_(0, styles, losses.detach().float())
        self.counts.index_add_(0, styles, torch.ones_like(losses, dtype=torch.float))

    def means_since_last(self) -> dict[str, float]:
        sums, counts = self.sums.tolist(), self.counts.tolist()
        self.sums.zero_()
        self.counts.zero_()
        return {name: s / c for name, s, c in zip(self.names, sums, counts) if c}


def fit(job: Job, *, device: torch.device, vgg: nn.Module,
        on_step: Callable[[StepReport], None] | None = None, time_limit: float | None = None) -> TrainResult:
    """Run the training loop from ``job.start_step`` to ``job.settings.steps``.

    ``time_limit`` (seconds) stops the run after the first step that ends past it, saved
    like a Ctrl-C, so training can go in chunks of a fixed wall time that each resume the last.
    ``device`` is the current CUDA device meanwhile, so that the data loader's
    pin-memory thread works on it rather than opening a context on GPU 0.
    """
    with device_scope(device):
        return _fit(job, device=device, vgg=vgg, on_step=on_step, time_limit=time_limit)


def _fit(job: Job, *, device: torch.device, vgg: nn.Module,
         on_step: Callable[[StepReport], None] | None, time_limit: float | None) -> TrainResult:
    s = job.settings
    deadline = time.monotonic() + time_limit if time_limit is not None else math.inf
    rank, world = distributed.world()
    main = rank == 0
    net = job.net.to(device).train()
    loss_fn: nn.Module = PerceptualLoss(vgg, [img.to(device) for img in job.style_images], s.weights)
    if job.teacher is not None:
        loss_fn = TeacherAnchor(loss_fn, job.teacher, job.style_ids, s.weights.teacher)
    if s.weights.lattice:
        loss_fn = LatticePenalty(loss_fn, s.weights.lattice)
    loss_fn = loss_fn.to(device)
    style_ids = job.style_ids.to(device)
    optimizer = torch.optim.Adam(job.params, lr=s.lr)
    if job.optimizer_state is not None:
        ckpt_io.check_optimizer_state(job.optimizer_state, optimizer, job.output)
        optimizer.load_state_dict(job.optimizer_state)
    model: nn.Module = FastStyleNet(net)
    if world > 1:
        model = data_parallel(model, device)
    data = ContentPhotos(job.content_dir, image_size=s.image_size, batch_size=s.batch_size,
                         style_pool=len(job.style_images), seed=s.seed, rank=rank, world_size=world,
                         flat_areas=s.flat_areas)
    loader = DataLoader(data, batch_size=None, sampler=range(job.start_step, s.steps), num_workers=s.workers,
                        pin_memory=device.type == "cuda", prefetch_factor=4 if s.workers else None,
                        worker_init_fn=ignore_sigint if s.workers else None)
    precision = training_precision(s.precision, device)
    scaler = precision.grad_scaler(device)
    log_path = job.output.with_suffix(".log.jsonl")
    preview_dir = job.output.with_suffix(".previews")
    snapshot_dir = job.output.with_suffix(".snapshots")

    saved = job.start_step if job.optimizer_state is not None else None  # the step the checkpoint on disk holds

    def check_finite(step: int) -> None:
        """Refuse to save weights that are not finite (on every rank: they are the same weights)."""
        if not all(bool(torch.isfinite(p).all()) for p in net.parameters()):
            raise TrainingDiverged(f"the weights became NaN or infinite at step {step}; {_kept(job.output, saved)}")

    def checkpoint_of(step: int) -> ckpt_io.Checkpoint:
        meta = {**job.metadata, "training": {**job.metadata.get("training", {}), **s.to_dict()}}
        return ckpt_io.Checkpoint(net=net, styles=job.styles, step=step, **meta)

    def save(step: int) -> None:
        """Write the checkpoint of ``step``, only if its weights are finite; a failed write keeps
        the previous one."""
        nonlocal saved
        check_finite(step)
        if job.guard is not None:
            job.guard.check_weights(step)
        if not main or step == saved:
            return
        try:
            ckpt_io.save(job.output, checkpoint_of(step), optimizer=optimizer)
        except StylizeError as exc:
            raise StylizeError(f"{exc}; {_kept(job.output, saved)}") from None
        saved = step

    def snapshot(step: int) -> None:
        """Keep ``step``'s weights as a lean fp16 model in ``MODEL.snapshots/``.

        Artifacts can grow and fade again over a long run (a blob on one spot of every
        style); with snapshots, a clean earlier state can still be released.
        """
        check_finite(step)
        if main:
            ckpt_io.save(snapshot_dir / f"step_{step:07d}.safetensors", checkpoint_of(step), half=True)

    by_style = _PerStyle([job.styles[i] for i in job.style_ids.tolist()], device)
    step, losses, interrupted, out_of_time = job.start_step, {}, False, False
    tick = time.perf_counter()
    stop = StopRequest(world)
    warned: set[str] = set()
    try:
        for images, styles, skipped in loader:
            for reason in skipped if main else ():
                if reason not in warned:  # once per photo, though it is met again every epoch
                    warned.add(reason)
                    warnings.warn(f"{reason}; training on the other photos", StylizeWarning, stacklevel=2)
            if images is None:
                raise StylizeError(f"no content photo can be read ({skipped[0]})")
            images = images.to(device, non_blocking=True).float().div_(255)
            styles = styles.to(device, non_blocking=True)
            for group in optimizer.param_groups:
                group["lr"] = s.lr_at(step)
            with precision.autocast(device):
                output = model(images, style_ids[styles])
                terms = loss_fn(output.float(), images, styles, per_sample=True)
            by_style.add(styles, terms.pop("style_each"))
            current, stopping = agree(terms, stop.requested, world)
            if not math.isfinite(current["total"]):
                raise TrainingDiverged(f"loss became {current['total']} at step {step + 1}; {_kept(job.output, saved)}")
            if job.guard is not None:
                job.guard.check_loss(step, current)
            if stopping:
                raise KeyboardInterrupt
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(terms["total"]).backward()
            scaler.step(optimizer)
            scaler.update()
            step, losses = step + 1, current
            out_of_time = out_of_time or time.monotonic() > deadline
            stop.requested = stop.requested or out_of_time  # every rank hears of it at the next step
            if not main:
                continue
            now = time.perf_counter()
            report = StepReport(step, s.steps, s.batch_size / max(now - tick, 1e-9), s.lr_at(step - 1), losses)
            tick = now
            if step % s.log_every == 0 or step == s.steps:
                _append_line(log_path, json.dumps({"step": step, "lr": report.lr, **losses,
                                                   "styles": by_style.means_since_last()}))
            if step % s.checkpoint_every == 0:
                save(step)
            if s.snapshot_every and step % s.snapshot_every == 0:
                snapshot(step)
            if job.preview_photo is not None and (step % s.preview_every == 0 or step == s.steps):
                try:
                    write_preview(preview_dir / f"step_{step:07d}.jpg", net, job.preview_photo, job.style_ids)
                except StylizeError as exc:  # reported below like any stop: what is saved, how to go on
                    raise OSError(f"the preview: {exc}") from exc
            if on_step is not None:
                try:
                    on_step(report)
                except KeyboardInterrupt:
                    if world == 1:
                        raise
                    stop.requested = True  # the other ranks hear of it at the next step
    except KeyboardInterrupt:
        interrupted = True
    except TrainingDiverged:
        stop.restore()
        raise
    except Exception as exc:
        stop.restore()
        with contextlib.suppress(Exception):  # keep the steps done; the error says what stopped the run
            save(step)
        if isinstance(exc, (RuntimeError, OSError)):  # from torch, the data loader, the log file
            raise StylizeError(f"training stopped after step {step}: {first_line(exc)}; "
                               f"{_kept(job.output, saved)}") from exc
        raise
    except BaseException:
        stop.restore()
        raise
    try:
        # Only rank 0 writes. The weights it saves after step k are every rank's weights
        # after step k; a later step that diverges raises on all ranks before any write.
        save(step)
        if world > 1:
            dist.barrier()  # the file exists before any rank returns
    finally:
        stop.restore()
    out_of_time = out_of_time and step < s.steps
    return TrainResult(step=step, interrupted=interrupted and not out_of_time, losses=losses,
                       checkpoint=job.output, out_of_time=out_of_time)


def _kept(output: Path, saved: int | None) -> str:
    """What is left after a failure, and what to do next."""
    if saved is None:
        return "no checkpoint was written yet; start again (with a lower --lr if the loss diverged)"
    return (f"{output} holds step {saved}; continue it with --resume (add a lower --lr if the loss diverged: "
            "--resume takes a new --lr)")


def _append_line(path: Path, line: str) -> None:
    try:
        with path.open("a") as log:
            log.write(line + "\n")
    except OSError as exc:
        raise StylizeError(f"cannot write the training log {path}: {exc.strerror or exc}") from None


@leaves_process_group
@keeps_random_stream
def train(style_dir: Path, content_dir: Path, output: Path, settings: TrainSettings = TrainSettings(), *,
          device: str | torch.device = "auto", vgg_weights: Path | None = None, resume: bool = False,
          overwrite: bool = False, resume_lr: float | None = None, resume_precision: str | None = None,
          resume_snapshot_every: int | None = None, init_from: Path | None = None, preview: Path | None = None,
          on_step: Callable[[StepReport], None] | None = None, time_limit: float | None = None) -> TrainResult:
    """Train one network on every painting in ``style_dir`` (a style per file stem).

    An existing ``output`` is continued with ``resume``, replaced with ``overwrite``, else refused.
    A resumed run keeps its stored settings but takes ``settings.steps`` and ``settings.workers``,
    ``resume_lr`` if given (a lower rate after the loss diverged), ``resume_precision`` if given
    (the run moved to hardware that computes another precision natively) and ``resume_snapshot_every``
    if given (a new cadence of snapshots; 0 stops them).

    ``init_from`` continues from a released model (a lean checkpoint: weights without
    optimizer state), with this call's settings: its weights and step count are carried
    on, so the learning-rate schedule goes on where it was, with a fresh optimizer warmed
    up over ``settings.warmup_steps``.
    """
    output = Path(output)
    torch_device = init_from_env(resolve_device(device))
    with writer_lock(output):
        return _train(style_dir, content_dir, output, settings, torch_device, vgg_weights, resume, overwrite,
                      resume_lr, resume_precision, resume_snapshot_every, init_from, preview, on_step, time_limit)


def _train(style_dir: Path, content_dir: Path, output: Path, settings: TrainSettings, torch_device: torch.device,
           vgg_weights: Path | None, resume: bool, overwrite: bool, resume_lr: float | None,
           resume_precision: str | None, resume_snapshot_every: int | None, init_from: Path | None,
           preview: Path | None, on_step: Callable[[StepReport], None] | None,
           time_limit: float | None) -> TrainResult:
    """:func:`train` once its device is chosen and its output locked."""
    from ..io.images import read_image
    from .vgg import load_vgg

    start_step, optimizer_state, work_sizes = 0, None, {}
    if resume and init_from is not None:
        raise StylizeError("--resume and --init-from exclude each other: --resume continues the run in --output")
    if not (resume or overwrite) and (output.exists() or output.is_symlink()):
        raise StylizeError(f"{output} already exists; continue that run with --resume, or pass --overwrite "
                           "to start a new one in its place")
    previous = ckpt_io.load(output) if resume else None
    if previous is not None:
        # Settings first: the paintings are loaded at the run's own stored --style-size.
        settings = TrainSettings.from_dict(previous.training, steps=settings.steps, workers=settings.workers,
                                           snapshot_every=resume_snapshot_every, lr=resume_lr,
                                           precision=resume_precision)
    names, style_images = load_styles(style_dir, settings.style_size)
    if init_from is not None:
        initial = load_initial(Path(init_from), names)
        net, start_step, work_sizes = initial.net, initial.step, initial.work_sizes
        settings = dataclasses.replace(settings, warmup_from=start_step, preset=preset_of(net.config))
        check_steps_left(start_step, settings, init_from, "--init-from")
    elif previous is not None:
        check_resumable(previous, output, names)
        net, start_step, optimizer_state = previous.net, previous.step, previous.optimizer_state
        work_sizes = previous.work_sizes
        check_steps_left(previous.step, settings, output, "--resume")
    else:
        if settings.preset not in PRESETS:
            raise StylizeError(f"unknown preset {settings.preset!r}; choose one of {', '.join(PRESETS)}")
        torch.manual_seed(settings.seed)
        net = StyleNet(dataclasses.replace(PRESETS[settings.preset], n_styles=len(names)))
    if not output.parent.is_dir():
        raise StylizeError(f"output folder {output.parent} does not exist")
    vgg = load_vgg(vgg_weights, torch_device)
    preview_photo = preview_image(read_image(preview).rgb if preview is not None else None, content_dir)
    job = Job(net=net, styles=names, style_images=style_images, style_ids=torch.arange(len(names)),
              params=list(net.parameters()), output=output, content_dir=Path(content_dir), settings=settings,
              start_step=start_step, optimizer_state=optimizer_state, preview_photo=preview_photo,
              metadata={"loss_network": vgg.network_id, "work_sizes": work_sizes},
              teacher=load_teacher(settings, names))
    return fit(job, device=torch_device, vgg=vgg, on_step=on_step, time_limit=time_limit)
