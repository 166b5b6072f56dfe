"""New styles on a frozen network: ``add-style``, and any picture as a style on the fly.

With conditional instance norm a style is one (gamma, beta) row per norm layer, and
Dumoulin et al. (2017) found that a new style learned with every other weight frozen
matches one trained jointly. So learning a style here means: append one row per new
painting to every norm's ``weight``/``bias`` (initialised to the model's style nearest
the painting, :func:`warm_start`), freeze every
other parameter, and run the ordinary training loop :func:`stylize.train.loop.fit` on the
norm tensors with a gradient hook that zeroes their old rows.

Zeroing the old rows' gradients (rather than splitting each tensor into a frozen and a
trainable part) keeps the norm layer and the checkpoint format unchanged, and it is
exact: Adam (no weight decay) starts with zero moments, a zero gradient keeps them
zero, and its update ``m / (sqrt(v) + eps)`` is then exactly 0, so every old row and
every shared weight leaves training bit-identical (the tests check it), and the old
styles render exactly as before.

Learning on the fly (:func:`learn_style`) keeps only the learned rows, in a small
safetensors file in the user's cache keyed by the model, the painting and the
settings (:mod:`stylize.io.style_cache`, torch-free), so asking for the same painting
again costs nothing, and ``apply`` renders it on ONNX Runtime without PyTorch.
"""

from __future__ import annotations

import dataclasses
import tempfile
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..config import ADD_STEPS, STYLE_LR, TrainSettings
from ..errors import StylizeError, StylizeWarning
from ..io.images import read_image
from ..io.lock import writes
from ..io.pixels import resize_long_side
from ..io.style_cache import read_rows, style_key, write_rows
from ..model import checkpoint as ckpt_io
from ..model.checkpoint import Checkpoint
from ..model.edits import check_output, edit_rows, style_row_keys
from ..model.styles import check_new_name, free_name, name_key
from ..model.engine import FastStyleNet
from ..model.network import StyleNet
from ..runtime.device import resolve_device
from ..runtime.distributed import everyone, init_from_env, world
from .data import ContentPhotos, photo_files
from .divergence import RowGuard, style_breaks
from .loop import Job, StepReport, TrainResult, TrainingDiverged, fit
from .loss import PerceptualLoss
from .previews import preview_image
from .ranks import leaves_process_group
from .recipe import Overrides, new_row_settings, quick_settings
from .resume import check_resumable, check_steps_left
from .seed import keeps_random_stream
from .vgg import load_vgg

RETRIES = 3
"""Times a diverged run goes back to its last good rows, each time at :data:`BACKOFF` times the rate."""

BACKOFF = 0.25
"""Each retry's rate as a share of the last: three retries span 64x, from a rate that runs away to a slow one."""

def _zero_rows(first_trainable: int, grad: Tensor) -> Tensor:
    grad = grad.clone()
    grad[:first_trainable] = 0
    return grad


def train_only_rows_from(net: StyleNet, first: int) -> list[nn.Parameter]:
    """Freeze ``net`` except rows ``first:`` of every norm's weight/bias; returns those tensors for the optimizer."""
    net.requires_grad_(False)
    keys = set(style_row_keys(net))
    params = [param for key, param in net.named_parameters() if key in keys]
    for param in params:
        param.requires_grad_(True)
        param.register_hook(partial(_zero_rows, first))
    return params


def with_new_styles(source: Checkpoint, names: Sequence[str], starts: Sequence[int] | None = None) -> Checkpoint:
    """``source`` plus one style per name, each starting as style ``starts[i]``, or as the mean of the
    existing styles."""
    picks = [None] * len(names) if starts is None else list(starts)
    return edit_rows(source, [*source.styles, *names], lambda key, old: torch.cat(
        [old, torch.stack([old.mean(0) if start is None else old[start] for start in picks])]))


def _check_loss_network(source: Checkpoint, vgg: nn.Module, model: str | Path) -> None:
    """New styles must be measured like the old ones, or their strength would not match."""
    if source.loss_network and source.loss_network != vgg.network_id:
        raise StylizeError(f"{model} was trained with loss network {source.loss_network}, not {vgg.network_id}; "
                           "pass the same --vgg-weights it was trained with")


def _paintings(style_images: Sequence[Path], size: int) -> list[Tensor]:
    return [resize_long_side(read_image(Path(p)).rgb, size) for p in style_images]


def _new_style_job(source: Checkpoint, net: StyleNet, paintings: list[Tensor], styles: list[str],
                   photos: list[Path], output: Path, settings: TrainSettings, loss_network: str,
                   **job_fields) -> Job:
    """The :class:`Job` that trains the styles after ``source``'s on ``net``, nothing else."""
    first = len(source.styles)
    params = train_only_rows_from(net, first)
    return Job(net=net, styles=styles, style_images=paintings, style_ids=torch.arange(first, len(styles)),
               params=params, output=output, content_dir=photos, settings=settings,
               metadata={"loss_network": loss_network, "work_sizes": source.work_sizes},
               guard=RowGuard(net, params, first, paintings, step=job_fields.get("start_step", 0)), **job_fields)


def fit_new_rows(job: Job, *, device: torch.device, vgg: nn.Module,
                 on_step: Callable[[StepReport], None] | None = None) -> TrainResult:
    """:func:`fit` for new style rows, which recovers from divergence (``job.guard``, a :class:`RowGuard`).

    A diverged run goes back to its last good rows and step and continues with a fresh
    optimizer at :data:`BACKOFF` times the rate, up to :data:`RETRIES` times; then it is
    a :class:`TrainingDiverged` error. The guard checks the rows before every save, so
    nothing diverged is ever written.
    """
    guard = job.guard
    assert isinstance(guard, RowGuard)
    retries = 0
    while True:
        guard.reason = ""
        try:
            return fit(job, device=device, vgg=vgg, on_step=on_step)
        except TrainingDiverged as exc:
            reason = guard.reason or str(exc)
            if retries == RETRIES:
                raise TrainingDiverged(f"learning the style diverged {RETRIES + 1} times, the last at learning rate "
                                       f"{job.settings.lr:.2g}: {reason}") from None
        retries += 1
        step = guard.restore()
        settings = dataclasses.replace(job.settings, lr=job.settings.lr * BACKOFF)
        warnings.warn(f"{reason}; going back to step {step} at learning rate {settings.lr:.2g}", StylizeWarning,
                      stacklevel=2)
        job = dataclasses.replace(job, settings=settings, start_step=step, optimizer_state=None)


def _names_for(style_images: Sequence[Path], name: str | None, taken: Sequence[str], model: Path) -> list[str]:
    if not style_images:
        raise StylizeError("give at least one style image")
    if name is not None and len(style_images) > 1:
        raise StylizeError(f"--name names one style, but {len(style_images)} style images were given")
    names = [check_new_name(name if name is not None else Path(image).stem, taken, model) for image in style_images]
    for i, new in enumerate(names):
        twins = [other for other in names if name_key(other) == name_key(new)]
        if len(twins) > 1:
            raise StylizeError(f"{len(twins)} style images named {new!r} ({style_images[i]}, ...); style names "
                               "must be unique: add them one at a time with --name")
    return names


@leaves_process_group
@writes("output")
@keeps_random_stream
def add_styles(model: Path, style_images: Sequence[Path], content: Path | Sequence[Path], output: Path, *,
               name: str | None = None, overrides: Overrides = Overrides(), device: str | torch.device = "auto",
               vgg_weights: Path | None = None, resume: bool = False, overwrite: bool = False,
               preview: Path | None = None,
               on_step: Callable[[StepReport], None] | None = None) -> TrainResult:
    """Write ``output``: ``model`` plus one style per image, learned with every shared weight frozen.

    Each new style starts from the model's style nearest its painting (:func:`warm_start`).
    Names default to the images' file stems (``name`` renames a single image). Settings
    default to those in ``model``'s metadata with :data:`ADD_STEPS` steps at :data:`STYLE_LR`; ``overrides``
    change them. Like :func:`stylize.train.loop.train`, ``output`` gets a ``.log.jsonl`` and
    ``.previews/`` beside it, Ctrl-C saves and returns, and ``resume`` continues a run
    saved in ``output``; otherwise an existing ``output`` is refused unless ``overwrite``, and so
    is one that another live run is writing (:mod:`stylize.io.lock`).
    ``model`` is only read.
    """
    model, output = Path(model), Path(output)
    check_output(model, output, overwrite=overwrite or resume)
    source = ckpt_io.load(model)
    names = _names_for(style_images, name, source.styles, model)
    styles = [*source.styles, *names]
    if resume:
        previous = _resumable(output, source, styles, model)
        net, start = previous.net, {"start_step": previous.step, "optimizer_state": previous.optimizer_state}
        settings = new_row_settings(previous.training, steps=overrides.steps, lr=overrides.lr,
                                    workers=overrides.workers)
        check_steps_left(previous.step, settings, output, "--resume")
    else:
        net, start = None, {}
        settings = overrides.apply(new_row_settings(source.training, steps=ADD_STEPS, lr=STYLE_LR))
    torch_device = init_from_env(resolve_device(device))
    paintings = _paintings(style_images, settings.style_size)
    photos = photo_files(content)
    preview_photo = preview_image(read_image(preview).rgb if preview else None, photos)
    vgg = load_vgg(vgg_weights, torch_device)
    _check_loss_network(source, vgg, model)
    if net is None:
        net = warm_start(source, names, paintings, photos, settings, vgg, torch_device).net
    job = _new_style_job(source, net, paintings, styles, photos, output, settings, vgg.network_id, **start,
                         preview_photo=preview_photo)
    return fit_new_rows(job, device=torch_device, vgg=vgg, on_step=on_step)


def _resumable(output: Path, source: Checkpoint, styles: list[str], model: Path) -> Checkpoint:
    """The interrupted ``add-style`` run in ``output``, checked to extend ``source`` with ``styles``."""
    previous = ckpt_io.load(output)
    check_resumable(previous, output, styles)
    shared = edit_rows(previous, source.styles, lambda key, rows: rows[:len(source.styles)]).net.state_dict()
    if any(not torch.equal(tensor, shared[key]) for key, tensor in source.net.state_dict().items()):
        raise StylizeError(f"--resume: {output} was not made from {model} (their shared weights differ)")
    return previous


@keeps_random_stream
def learn_style(model: Path | Checkpoint, style_image: Path, photos: Path | Sequence[Path], *,
                name: str | None = None, overrides: Overrides = Overrides(), device: str | torch.device = "auto",
                vgg_weights: Path | None = None,
                on_step: Callable[[StepReport], None] | None = None) -> Checkpoint:
    """``model`` plus the style of ``style_image`` as its last style, learned on ``photos``, or cached.

    ``photos`` (a folder or photo files; typically the photos about to be stylized) are
    what the style is learned on, in random crops, starting from the model's style
    nearest to the painting (:func:`warm_start`). Settings: :func:`~stylize.train.recipe.quick_settings` for
    the device, then ``overrides``. The learned rows are cached under
    ``cache_dir()/styles`` keyed by the model's weights, the image file's bytes and the
    settings (not the photos: the style is a property of the painting), so a second call
    returns at once without calling ``on_step``; an entry that fails its checks (another
    key, shapes, a rendering that is not a picture) is relearned. ``name`` defaults to the
    image's stem, made unique. Ctrl-C raises KeyboardInterrupt and caches nothing; a run
    that diverges past recovery raises :class:`~stylize.train.loop.TrainingDiverged` and caches
    nothing. ``model`` is not modified; the result's new style index is ``len(result.styles) - 1``.
    """
    source = model if isinstance(model, Checkpoint) else ckpt_io.load(Path(model))
    torch_device = resolve_device(device)
    settings = quick_settings(source.training, torch_device.type, overrides)
    # Under torchrun the ranks learn together, each taking its share of every batch: at least a
    # photo a rank (the CPU recipe's batch is one photo). One save at the end only: what is kept
    # is the rows, in the cache, not this checkpoint.
    _, ranks = world()
    settings = dataclasses.replace(settings, batch_size=-(-settings.batch_size // ranks) * ranks,
                                   checkpoint_every=settings.steps + 1, log_every=settings.steps)
    style_image = Path(style_image)
    painting = _paintings([style_image], settings.style_size)[0]
    label = check_new_name(name, source.styles, "the model") if name is not None else free_name(
        style_image.stem, source.styles)
    weights = {k: v.detach().float().cpu().numpy() for k, v in source.net.state_dict().items()}
    key = style_key(weights, style_image, settings, vgg_weights)
    learned = _cached_style(read_rows(key, weights), source, label, painting)
    # Under torchrun the ranks learn together (DDP), so they must agree first: a rank
    # that found the rows in its node's cache while another did not would otherwise skip
    # the training collectives the others wait in.
    if not everyone(learned is not None, torch_device):
        learned = _learn(source, painting, label, photo_files(photos), settings, torch_device, vgg_weights, on_step)
        write_rows(key, learned_rows(learned))
    return learned


def learned_rows(learned: Checkpoint) -> dict[str, np.ndarray]:
    """The last style's (1, C) row of every norm tensor of ``learned``: what the cache keeps of a learned style."""
    state = learned.net.state_dict()
    return {key: state[key][-1:].detach().float().cpu().numpy() for key in style_row_keys(learned.net)}


def _with_rows(source: Checkpoint, name: str, rows: dict[str, np.ndarray]) -> Checkpoint:
    return edit_rows(source, [*source.styles, name],
                     lambda key, old: torch.cat([old, torch.from_numpy(rows[key]).to(old)]))


@torch.no_grad()
def nearest_style(net: StyleNet, loss_fn: PerceptualLoss, photos: Tensor, candidates: int) -> int:
    """Of styles ``0..candidates-1`` of ``net``, the one whose renderings of ``photos`` ((N,3,H,W) in [0, 1])
    score best under ``loss_fn``."""
    n = photos.shape[0]
    scores = [loss_fn(FastStyleNet(net)(photos, style), photos, torch.zeros(n, dtype=torch.long))["total"].item()
              for style in range(candidates)]
    return min(range(len(scores)), key=scores.__getitem__)


def warm_start(source: Checkpoint, names: Sequence[str], paintings: list[Tensor], photos: list[Path],
               settings: TrainSettings, vgg: nn.Module, device: torch.device) -> Checkpoint:
    """``source`` plus one style per name, each starting as the model's style nearest its painting
    (:func:`nearest_style` on the first batch of ``photos``); for ``add-style`` and ``--style-image`` alike.

    The model's styles cover much of what paintings look like, so a painting's nearest one
    is often most of the way there, and the steps go into the difference (a CPU affords few).
    """
    first_batch = ContentPhotos(photos, image_size=settings.image_size, batch_size=settings.batch_size, style_pool=1,
                                seed=settings.seed)[0][0]
    if first_batch is None:
        raise StylizeError(f"no content photo can be read ({photos[0]}, ...)")
    batch = first_batch.to(device).float().div_(255)
    net = with_new_styles(source, names).net.to(device)
    starts = [nearest_style(net, PerceptualLoss(vgg, [painting.to(device)], settings.weights).to(device), batch,
                            len(source.styles)) for painting in paintings]
    return with_new_styles(source, names, starts)


def _learn(source: Checkpoint, painting: Tensor, name: str, photos: list[Path], settings: TrainSettings,
           device: torch.device, vgg_weights: Path | None,
           on_step: Callable[[StepReport], None] | None) -> Checkpoint:
    """``source`` plus the style of ``painting`` learned on ``photos``; see :func:`learn_style`."""
    vgg = load_vgg(vgg_weights, device)
    _check_loss_network(source, vgg, "the model")
    learned = warm_start(source, [name], [painting], photos, settings, vgg, device)
    with tempfile.TemporaryDirectory(prefix="stylize-style-") as tmp:
        job = _new_style_job(source, learned.net, [painting], learned.styles, photos,
                             Path(tmp) / "style.safetensors", settings, vgg.network_id)
        if fit_new_rows(job, device=device, vgg=vgg, on_step=on_step).interrupted:
            raise KeyboardInterrupt
    return _with_rows(source, name, learned_rows(learned))  # a fresh network, without training's hooks


def _cached_style(rows: dict[str, np.ndarray] | None, source: Checkpoint, name: str,
                  painting: Tensor) -> Checkpoint | None:
    """``source`` plus the cached ``rows`` (checked by :func:`~stylize.io.style_cache.read_rows`), or None when
    there are none or they do not render ``painting`` as a picture (relearned, never an error)."""
    if rows is None:
        return None
    learned = _with_rows(source, name, rows)
    return None if style_breaks(learned.net, len(source.styles), painting) else learned
