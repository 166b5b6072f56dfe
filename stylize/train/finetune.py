"""New styles on a frozen network: ``add-style``, and any picture as a style on the fly.

With conditional instance norm a style is one (gamma, beta) row per norm layer, and
Dumoulin et al. (2017) found that a new style learned with every other weight frozen
matches one trained jointly. So learning a style here means: append one row per new
painting to every norm's ``weight``/``bias`` (initialised to the mean of the existing
rows, an "average style" that is closer to any painting than ones/zeros), freeze every
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
settings, so asking for the same painting again costs nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch import Tensor, nn

from ..config import ADD_STEPS, QUICK_CPU, QUICK_GPU, STYLE_LR
from ..errors import StylizeError, StylizeWarning
from ..io.cache import content_digest, read_cached_tensors, write_cached_tensors
from ..io.images import read_image
from ..io.lock import writes
from ..io.pixels import resize_long_side
from ..io.weights import cache_dir, file_sha256
from ..model import checkpoint as ckpt_io
from ..model.checkpoint import Checkpoint
from ..model.edits import check_new_name, check_output, edit_rows, free_name, name_key, style_row_keys
from ..model.engine import FastStyleNet
from ..model.network import StyleNet
from ..runtime.device import resolve_device
from ..runtime.distributed import everyone, init_from_env
from .data import ContentPhotos, photo_files
from .divergence import RowGuard, style_breaks
from .loop import Job, StepReport, TrainResult, TrainSettings, TrainingDiverged, fit
from .loss import PerceptualLoss
from .previews import preview_image
from .ranks import leaves_process_group
from .resume import check_resumable, check_steps_left
from .vgg import load_vgg

_CACHE_FORMAT = "stylize-style-rows/2"
"""Version 1 entries may hold rows learned at a negative rate (issue 29): never read them."""

RETRIES = 3
"""Times a diverged run goes back to its last good rows, each time at :data:`BACKOFF` times the rate."""

BACKOFF = 0.25
"""Each retry's rate as a share of the last: three retries span 64x, from a rate that runs away to a slow one."""

_UNCACHED_SETTINGS = ("checkpoint_every", "preview_every", "log_every", "workers")
"""Settings that do not change what is learned, left out of the cache key."""


@dataclass(frozen=True)
class Overrides:
    """Settings the user changed; ``None`` keeps the default (the model's own, see callers)."""

    steps: int | None = None
    lr: float | None = None
    style_weight: float | None = None
    image_size: int | None = None
    batch_size: int | None = None
    style_size: int | None = None
    workers: int | None = None
    precision: str | None = None

    def apply(self, base: TrainSettings) -> TrainSettings:
        """``base`` with every given override (see :meth:`TrainSettings.changed`)."""
        return base.changed(**dataclasses.asdict(self))


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


def with_new_styles(source: Checkpoint, names: Sequence[str], start: int | None = None) -> Checkpoint:
    """``source`` plus one style per name, each starting as style ``start``, or the mean of the existing styles."""
    k = len(names)
    return edit_rows(source, [*source.styles, *names], lambda key, old: torch.cat(
        [old, (old.mean(0, keepdim=True) if start is None else old[start:start + 1]).expand(k, -1)]))


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
def add_styles(model: Path, style_images: Sequence[Path], content: Path | Sequence[Path], output: Path, *,
               name: str | None = None, overrides: Overrides = Overrides(), device: str | torch.device = "auto",
               vgg_weights: Path | None = None, resume: bool = False, overwrite: bool = False,
               preview: Path | None = None,
               on_step: Callable[[StepReport], None] | None = None) -> TrainResult:
    """Write ``output``: ``model`` plus one style per image, learned with every shared weight frozen.

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
        net, start = with_new_styles(source, names).net, {}
        settings = overrides.apply(new_row_settings(source.training, steps=ADD_STEPS, lr=STYLE_LR))
    torch_device = init_from_env(resolve_device(device))
    paintings = _paintings(style_images, settings.style_size)
    photos = photo_files(content)
    preview_photo = preview_image(read_image(preview).rgb if preview else None, photos)
    vgg = load_vgg(vgg_weights, torch_device)
    _check_loss_network(source, vgg, model)
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


def new_row_settings(training: dict, **changes) -> TrainSettings:
    """A model's stored settings (``training``), for new style rows, with ``changes``.

    The optimizer of new rows starts fresh at step 0, so the model's own warm-up (a
    released run continued from a late step stores that step in ``warmup_from``) does not
    carry over: Adam's first steps on a few thousand numbers are bounded by the rate anyway.
    """
    return TrainSettings.from_dict(training, warmup_steps=0, warmup_from=0, **changes)


def quick_settings(training: dict, device: torch.device) -> TrainSettings:
    """On-the-fly defaults: the model's own settings, with :data:`QUICK_CPU` or :data:`QUICK_GPU` sizes."""
    quick = QUICK_CPU if device.type == "cpu" else QUICK_GPU
    return new_row_settings(training, **quick)


def learn_style(model: Path | Checkpoint, style_image: Path, photos: Path | Sequence[Path], *,
                name: str | None = None, overrides: Overrides = Overrides(), device: str | torch.device = "auto",
                vgg_weights: Path | None = None,
                on_step: Callable[[StepReport], None] | None = None) -> Checkpoint:
    """``model`` plus the style of ``style_image`` as its last style, learned on ``photos``, or cached.

    ``photos`` (a folder or photo files; typically the photos about to be stylized) are
    what the style is learned on, in random crops, starting from the model's style
    nearest to the painting (:func:`nearest_style`). Settings: :func:`quick_settings` for
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
    settings = overrides.apply(quick_settings(source.training, torch_device))
    # One save at the end only: what is kept is the rows, in the cache, not this checkpoint.
    settings = dataclasses.replace(settings, checkpoint_every=settings.steps + 1, log_every=settings.steps)
    style_image = Path(style_image)
    painting = _paintings([style_image], settings.style_size)[0]
    label = check_new_name(name, source.styles, "the model") if name is not None else free_name(
        style_image.stem, source.styles)
    key = _cache_key(source, style_image, settings, vgg_weights)
    cached = cache_dir() / "styles" / f"{key}.safetensors"
    learned = _cached_style(cached, key, source, label, painting)
    # Under torchrun the ranks learn together (DDP), so they must agree first: a rank
    # that found the rows in its node's cache while another did not would otherwise skip
    # the training collectives the others wait in.
    if not everyone(learned is not None, torch_device):
        rows = _learn_rows(source, painting, label, photo_files(photos), settings, torch_device, vgg_weights, on_step)
        _write_rows(cached, rows, key)
        learned = _with_rows(source, label, rows)
    return learned


def _with_rows(source: Checkpoint, name: str, rows: dict[str, Tensor]) -> Checkpoint:
    return edit_rows(source, [*source.styles, name], lambda key, old: torch.cat([old, rows[key].to(old)]))


@torch.no_grad()
def nearest_style(net: StyleNet, loss_fn: PerceptualLoss, photos: Tensor, candidates: int) -> int:
    """Of styles ``0..candidates-1`` of ``net``, the one whose renderings of ``photos`` ((N,3,H,W) in [0, 1])
    score best under ``loss_fn``.

    A new style starts from it: the shipped styles cover much of what paintings look
    like, so a painting's nearest one is often most of the way there, and the few steps
    a CPU can afford go into the difference.
    """
    n = photos.shape[0]
    scores = [loss_fn(FastStyleNet(net)(photos, style), photos, torch.zeros(n, dtype=torch.long))["total"].item()
              for style in range(candidates)]
    return min(range(len(scores)), key=scores.__getitem__)


def _learn_rows(source: Checkpoint, painting: Tensor, name: str, photos: list[Path], settings: TrainSettings,
                device: torch.device, vgg_weights: Path | None,
                on_step: Callable[[StepReport], None] | None) -> dict[str, Tensor]:
    vgg = load_vgg(vgg_weights, device)
    _check_loss_network(source, vgg, "the model")
    first_batch = ContentPhotos(photos, image_size=settings.image_size, batch_size=settings.batch_size, style_pool=1,
                                seed=settings.seed)[0][0]
    if first_batch is None:
        raise StylizeError(f"no content photo can be read ({photos[0]}, ...)")
    loss_fn = PerceptualLoss(vgg, [painting.to(device)], settings.weights).to(device)
    first = len(source.styles)
    start = nearest_style(with_new_styles(source, [name]).net.to(device), loss_fn,
                          first_batch.to(device).float().div_(255), first)
    net = with_new_styles(source, [name], start).net
    with tempfile.TemporaryDirectory(prefix="stylize-style-") as tmp:
        job = _new_style_job(source, net, [painting], [*source.styles, name], photos, Path(tmp) / "style.safetensors",
                             settings, vgg.network_id)
        if fit_new_rows(job, device=device, vgg=vgg, on_step=on_step).interrupted:
            raise KeyboardInterrupt
    state = net.state_dict()
    return {key: state[key][first:].detach().cpu().clone() for key in style_row_keys(net)}


def _cache_key(source: Checkpoint, style_image: Path, settings: TrainSettings, vgg_weights: Path | None) -> str:
    """sha256 over everything the learned rows depend on."""
    try:
        image_sha = file_sha256(style_image)
    except OSError as exc:
        raise StylizeError(f"{style_image}: cannot read ({exc.strerror or exc})") from None
    material = {
        "format": _CACHE_FORMAT,
        "model": content_digest({k: v.detach().cpu() for k, v in source.net.state_dict().items()}),
        "image": image_sha,
        "settings": {k: v for k, v in settings.to_dict().items() if k not in _UNCACHED_SETTINGS},
        "loss_network": "default" if vgg_weights is None else file_sha256(Path(vgg_weights)),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


ROW_RANGE = 10.0
"""How far beyond the model's own style rows a cached learned row may go: a style learned
from the model's rows stays of the same order, while garbage is orders of magnitude off."""


def _cached_style(path: Path, key: str, source: Checkpoint, name: str, painting: Tensor) -> Checkpoint | None:
    """``source`` plus the cached style, or None when absent or unusable (relearned, never an error).

    The cache is not trusted: the entry must name its own key (a file planted or copied
    under another name is not used), hold one finite row per norm tensor within
    :data:`ROW_RANGE` times the model's own rows there, and render its painting as a
    picture (not saturated, not flat), or it is relearned.
    """
    state = source.net.state_dict()
    expected = {k: (1, state[k].shape[1]) for k in style_row_keys(source.net)}
    cached = read_cached_tensors(path)
    if cached is None:
        return None
    meta, rows = cached
    shapes = {k: tuple(tensor.shape) for k, tensor in rows.items()}
    if not (meta.get("format") == _CACHE_FORMAT and meta.get("key") == key and shapes == expected
            and all(t.dtype.is_floating_point and t.isfinite().all() for t in rows.values())
            and all(rows[k].abs().max() <= ROW_RANGE * max(1.0, float(state[k].abs().max())) for k in expected)):
        return None
    learned = _with_rows(source, name, rows)
    return None if style_breaks(learned.net, len(source.styles), painting) else learned


def _write_rows(path: Path, rows: dict[str, Tensor], key: str) -> None:
    """Cache the rows under ``key``; failing to only costs relearning next time."""
    write_cached_tensors(path, rows, {"format": _CACHE_FORMAT, "key": key}, "the learned style")
