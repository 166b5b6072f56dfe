"""Distillation: a cheaper student network taught to paint exactly what a trained teacher paints.

Training a network from scratch needs the VGG16 loss network on every step, which is
most of a step's cost; a student for CPUs needs none of it. The teacher (a released
multi-style model) is run on each batch of photo crops, every sample in a random style,
and its output is the target: the student learns the teacher's *function*, not the
paintings, so it inherits the teacher's look, and its loss relative to the teacher's
is the measure of how much it lost (``stylize evaluate`` at 256 px).

The loss per sample is pixel L1 against the teacher's output plus, as the "light
feature loss", L1 between the two images' horizontal and vertical differences: pixel
L1 alone settles for a blur of the brush strokes, which are edges; matching the
differences asks for the strokes themselves, at no extra network pass.

The student has the teacher's styles, in the same order, with its own (gamma, beta)
rows: style mixing, ``--strength`` and ``add-style`` work on it as on any model. The
student starts with every style's rows at the identity (gamma 1, beta 0), the same
as a network trained from scratch: the rows have no counterpart in the teacher (other
widths, other layers) and grow apart from the first steps, as the targets differ. They
learn at ``style_lr`` (10x the weights' rate, as ``add-style``'s rows do), since each row
learns from one style's samples only, 1/22 of them.

The run never loses more than ``checkpoint_minutes``: it saves the checkpoint with its
optimizer state that often (and when stopped by ``time_limit`` or Ctrl-C), and
``resume`` continues the same step count and batch sequence. Every step's losses go to
a JSONL log beside the checkpoint, and a preview (teacher's rendering above the
student's) is written with each checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import PRESETS, DistillSettings, TrainSettings
from ..errors import StylizeError
from ..io.encode import write_image
from ..io.lock import writes
from ..model import checkpoint as ckpt_io
from ..model.engine import FastStyleNet
from ..model.network import StyleNet
from ..model.norm import ConditionalInstanceNorm2d
from ..runtime.device import resolve_device
from .data import ContentPhotos
from .loop import StepReport, TrainResult
from .loss import distill_loss
from .previews import preview_image
from .resume import load_initial, preset_of
from .seed import keeps_random_stream


@writes("output")
@keeps_random_stream
def distill(teacher_path: Path, content_dir: Path, output: Path, settings: DistillSettings = DistillSettings(), *,
            resume: bool = False, overwrite: bool = False, init_from: Path | None = None,
            device: str | torch.device = "auto", time_limit: float | None = None, preview_photo: Tensor | None = None,
            on_step: Callable[[StepReport], None] | None = None) -> TrainResult:
    """Train a ``settings.preset`` student on ``teacher_path``'s outputs for photos in ``content_dir``.

    An existing ``output`` is continued with ``resume`` (its stored settings, but this
    call's ``steps``), replaced with ``overwrite``, else refused; so is one that another live run
    is writing (:mod:`stylize.io.lock`). ``time_limit`` (seconds)
    stops and saves after the first step that ends past it. ``init_from`` starts from a released
    student (a lean checkpoint of the same preset and styles) with a fresh optimizer and schedule,
    so a run whose optimizer state was lost can still go on from its last shipped weights.
    ``device`` runs teacher and student there (``auto``: a GPU when there is one); the
    checkpoint is the same wherever it was trained, so a run can move between machines.
    """
    output = Path(output)
    teacher = ckpt_io.load(Path(teacher_path))
    styles = teacher.styles
    if resume and init_from is not None:
        raise StylizeError("--resume continues --output's own run; --init-from starts a new one: pass one of them")
    if resume:
        run = ckpt_io.load(output)
        if run.styles != styles:
            raise StylizeError(f"{output} has other styles than the teacher {teacher_path}")
        if run.optimizer_state is None:
            raise StylizeError(f"{output} holds no optimizer state (a lean export?); it cannot be resumed")
        stored = run.training.get("distill", {})
        settings = DistillSettings.from_dict(stored, steps=settings.steps)
        net, start = run.net, run.step
    elif output.exists() and not overwrite:
        raise StylizeError(f"{output} already exists; continue that run with --resume, or pass --overwrite")
    else:
        if settings.preset not in PRESETS:
            raise StylizeError(f"unknown preset {settings.preset!r}; choose one of {', '.join(PRESETS)}")
        torch.manual_seed(settings.seed)
        if init_from is not None:
            net = load_initial(Path(init_from), styles).net
            if preset_of(net.config) != settings.preset:
                raise StylizeError(f"--init-from: {init_from} is a {preset_of(net.config)!r} network, "
                                   f"not --preset {settings.preset!r}")
            net = net.float()
        else:
            net = StyleNet(dataclasses.replace(PRESETS[settings.preset], n_styles=len(styles)))
        start = 0
    torch_device = resolve_device(device)
    net.to(torch_device).train()
    rows = [p for m in net.modules() if isinstance(m, ConditionalInstanceNorm2d) for p in m.parameters()]
    weights = [p for p in net.parameters() if id(p) not in {id(r) for r in rows}]
    optimizer = torch.optim.Adam([{"params": weights, "lr": settings.lr, "base_lr": settings.lr},
                                  {"params": rows, "lr": settings.style_lr, "base_lr": settings.style_lr}])
    if resume:
        ckpt_io.check_optimizer_state(run.optimizer_state, optimizer, output)
        optimizer.load_state_dict(run.optimizer_state)
    student, master = FastStyleNet(net), FastStyleNet(teacher.net.to(torch_device).eval())
    data = ContentPhotos(content_dir, image_size=settings.image_size, batch_size=settings.batch_size,
                         style_pool=len(styles), seed=settings.seed, resize=settings.resize)
    photo = preview_image(preview_photo, content_dir).to(torch_device)
    log_path = output.with_suffix(".log.jsonl")
    # The teacher's loss (weights, painting size) is the student's objective by proxy: `stylize
    # evaluate` of the student then measures both under the same loss, and reuses its baselines.
    taught = TrainSettings.from_dict(teacher.training)
    loss = {"weights": taught.weights.to_dict(), "style_size": taught.style_size}
    deadline = time.monotonic() + time_limit if time_limit is not None else math.inf

    def save(step: int) -> None:
        if not all(bool(torch.isfinite(p).all()) for p in net.parameters()):
            raise StylizeError(f"the student's weights became NaN or infinite at step {step}; "
                               f"{output} keeps the last good state")
        training = {"preset": settings.preset, **loss, "distill": settings.to_dict(), "teacher": Path(teacher_path).name}
        ckpt_io.save(output, ckpt_io.Checkpoint(net=net, styles=styles, step=step, training=training,
                                                loss_network=None, work_sizes=teacher.work_sizes),
                     optimizer=optimizer)
        write_image(output.with_suffix(".preview.png"), preview_sheet(master, student, photo).cpu())

    step, losses, interrupted, out_of_time = start, {}, False, False
    saved_at = time.monotonic()
    try:
        while step < settings.steps:
            tick = time.perf_counter()
            images, style_ids, _skipped = data[step]
            if images is None:
                raise StylizeError(f"no photo in {content_dir} can be read")
            x = images.to(torch_device).float() / 255
            style_ids = style_ids.to(torch_device)
            decay = settings.decay_at(step)
            for group in optimizer.param_groups:
                group["lr"] = group["base_lr"] * decay
            lr = settings.lr * decay
            with torch.no_grad():
                target = master(x, style_ids)
            terms = distill_loss(student(x, style_ids), target, settings.gradient_weight)
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            optimizer.step()
            step += 1
            losses = {k: float(v.detach()) for k, v in terms.items()}
            if not math.isfinite(losses["loss"]):
                raise StylizeError(f"the loss became {losses['loss']} at step {step}; {output} keeps the last good state")
            seconds = time.perf_counter() - tick
            if step % settings.log_every == 0:
                with log_path.open("a") as log:
                    log.write(json.dumps({"step": step, "time": time.time(), "lr": lr, "s_per_step": seconds,
                                          **losses}) + "\n")
            if on_step is not None:
                on_step(StepReport(step, settings.steps, len(x) / seconds, lr, losses))
            if time.monotonic() >= deadline:
                out_of_time = True
                break
            if time.monotonic() - saved_at >= 60 * settings.checkpoint_minutes:
                save(step)
                saved_at = time.monotonic()
    except KeyboardInterrupt:
        interrupted = True
    save(step)
    return TrainResult(step=step, interrupted=interrupted, losses=losses, checkpoint=output, out_of_time=out_of_time)


@torch.no_grad()
def preview_sheet(teacher: FastStyleNet, student: FastStyleNet, photo: Tensor, styles: int = 4) -> Tensor:
    """The photo in the first ``styles`` styles (or all, if fewer): the teacher's renderings above the student's."""
    from torchvision.utils import make_grid

    was_training = student.training
    student.eval()
    x = photo[None]
    styles = min(styles, student.net.n_styles)
    rows = [teacher(x, i)[0] for i in range(styles)] + [student(x, i)[0] for i in range(styles)]
    student.train(was_training)
    return make_grid(torch.stack(rows), nrow=styles, padding=4, pad_value=1.0)
