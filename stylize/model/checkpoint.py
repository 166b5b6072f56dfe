"""Checkpoints: safetensors weights plus JSON metadata, never pickle.

A checkpoint is untrusted input (people share them), so loading must never execute
code: safetensors holds only raw tensors, and the metadata is plain JSON. Everything
needed to rebuild the network travels in the file: format version, architecture,
style names in order, training settings, loss-network id and package version.

A checkpoint written during training also carries the optimizer state and step
(tensors under ``train.``), so ``--resume`` continues exactly; :func:`save` with
``optimizer=None`` writes a lean file for shipping.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from safetensors.torch import save as serialize
from torch import Tensor

from .. import __version__
from ..checks import is_number, shown
from ..config import NetConfig
from ..errors import StylizeError, first_line
from ..io.atomic import write_atomically, write_failure
from .header import FORMAT, FORMAT_VERSION, META_KEY, TRAIN_PREFIX, check_work_sizes, read_header
from .network import StyleNet


@dataclass
class Checkpoint:
    """A loaded checkpoint: the network plus what the file says about it."""

    net: StyleNet
    styles: list[str]
    training: dict[str, Any] = field(default_factory=dict)
    loss_network: str | None = None
    step: int = 0
    optimizer_state: dict[str, Any] | None = None
    version: str = __version__
    work_sizes: dict[str, int] = field(default_factory=dict)
    """Style name -> the long side (px) it is painted at by default (0: full resolution); a
    style without an entry takes :data:`~stylize.config.WORK_SIZE` (see ``stylize set-work-size``)."""

    def __post_init__(self) -> None:
        # Every edit builds a new Checkpoint: one that drops or renames a style must say what
        # becomes of its size, or this refuses it rather than save a size under a stale name.
        self.work_sizes = check_work_sizes(self.work_sizes, self.styles)

    def metadata(self) -> dict[str, Any]:
        """What `stylize styles` shows: everything but the tensors."""
        return {
            "styles": self.styles,
            "config": self.net.config.to_dict(),
            "step": self.step,
            "training": self.training,
            "loss_network": self.loss_network,
            "stylize_version": self.version,
            "work_sizes": self.work_sizes,
        }


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, Tensor], list[dict[str, Any]]]:
    tensors = {}
    for index, per_param in state["state"].items():
        for key, value in per_param.items():
            tensors[f"{TRAIN_PREFIX}{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    return tensors, state["param_groups"]


def _unflatten_optimizer(tensors: dict[str, Tensor], groups: list[dict[str, Any]]) -> dict[str, Any]:
    state: dict[int, dict[str, Tensor]] = {}
    for name, value in tensors.items():
        index, key = name[len(TRAIN_PREFIX):].split(".", 1)
        state.setdefault(int(index), {})[key] = value
    return {"state": dict(sorted(state.items())), "param_groups": groups}


def save(path: Path, ckpt: Checkpoint, *, optimizer: torch.optim.Optimizer | None = None,
         half: bool = False, overwrite: bool = True) -> None:
    """Write ``ckpt`` atomically; with ``optimizer``, include its state for ``--resume``.

    Without ``overwrite`` an existing ``path`` is refused, even one created while this
    one was being written. A failed write (a full disk) leaves the previous file as it was.
    """
    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in ckpt.net.state_dict().items()}
    if half:
        tensors = {k: v.half() for k, v in tensors.items()}
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **ckpt.metadata(),
        "stylize_version": __version__,
    }
    if optimizer is not None:
        opt_tensors, groups = _flatten_optimizer(optimizer.state_dict())
        tensors.update(opt_tensors)
        meta["optimizer_param_groups"] = groups
    data = serialize(tensors, metadata={META_KEY: json.dumps(meta)})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        created = write_atomically(path, data, replace=overwrite)
    except OSError as exc:
        raise StylizeError(f"cannot write checkpoint {path}: {write_failure(exc, path, len(data))}") from None
    if not created:
        raise StylizeError(f"{path} already exists; pass --overwrite to replace it")


def read_metadata(path: Path) -> dict[str, Any]:
    """The JSON metadata of a checkpoint, checked, and its tensors' names, shapes and types
    checked against it, without loading any tensor (:func:`~stylize.model.header.read_header`)."""
    return read_header(path).meta


def stores_half(path: Path) -> bool:
    """Whether the network's weights are stored in fp16 (as ``export`` writes them by default).

    Read from the file's tensor headers without loading them, so that an edit of a lean
    model (``remove-style``, ``rename-style``) can keep its size instead of doubling it.
    """
    path = Path(path)
    read_metadata(path)
    with safe_open(str(path), framework="pt") as handle:
        dtypes = {handle.get_slice(key).get_dtype() for key in handle.keys() if not key.startswith(TRAIN_PREFIX)}
    return dtypes == {"F16"}


def load(path: Path, *, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint into a ready network (eval mode, fp32), or raise a one-line error.

    The tensors' names, shapes and types are checked against the architecture in the
    metadata before any tensor or network is allocated.
    """
    path = Path(path)
    meta = read_metadata(path)
    try:
        tensors = load_file(str(path), device=str(map_location))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise StylizeError(f"{path}: checkpoint is corrupt or truncated ({first_line(exc)})") from None
    net = StyleNet(NetConfig.from_dict(meta["config"]))
    weights = {k: v.float() for k, v in tensors.items() if not k.startswith(TRAIN_PREFIX)}
    net.load_state_dict(weights)
    if not all(torch.isfinite(v).all() for v in weights.values()):
        raise StylizeError(f"{path}: the weights hold NaN or infinite values (a training run that diverged?)")
    net.to(map_location).eval()
    train = {k: v for k, v in tensors.items() if k.startswith(TRAIN_PREFIX)}
    return Checkpoint(
        net=net,
        styles=list(meta["styles"]),
        training=meta.get("training", {}),
        loss_network=meta.get("loss_network"),
        step=meta.get("step", 0),
        optimizer_state=_unflatten_optimizer(train, meta["optimizer_param_groups"]) if train else None,
        version=meta.get("stylize_version", ""),
        work_sizes=meta.get("work_sizes", {}),
    )


def check_optimizer_state(state: dict[str, Any], optimizer: torch.optim.Optimizer, path: Path) -> None:
    """Refuse saved optimizer state that does not fit ``optimizer`` (a one-line error now, rather
    than a traceback from inside a training step later)."""
    fresh = optimizer.param_groups
    params = [p for group in fresh for p in group["params"]]
    counts = [len(group["params"]) for group in state["param_groups"]]
    if counts != [len(group["params"]) for group in fresh]:
        raise StylizeError(f"{path}: its optimizer state is for {sum(counts)} tensors in {len(counts)} groups, "
                           f"this run trains {len(params)} in {len(fresh)}; was it made by another command?")
    for saved, group in zip(state["param_groups"], fresh):
        for key, default in group.items():
            value = saved.get(key, default)
            if key != "params" and not _same_kind(value, default):
                raise StylizeError(f"{path}: bad optimizer setting {key} = {shown(value)}")
    for index, per_param in state["state"].items():
        if index >= len(params):
            raise StylizeError(f"{path}: optimizer state for tensor {index}, but this run trains {len(params)}")
        for key, value in per_param.items():
            if key != "step" and tuple(value.shape) != tuple(params[index].shape):
                raise StylizeError(f"{path}: optimizer state {key} of tensor {index} has shape "
                                   f"{list(value.shape)}, expected {list(params[index].shape)}")


def _same_kind(value: Any, default: Any) -> bool:
    """Whether a setting read from JSON can stand for ``default`` (JSON has no tuples, and
    no distinction between 0 and 0.0)."""
    if default is None or isinstance(default, bool):
        return value is None or isinstance(value, bool)
    if isinstance(default, (int, float)):
        return is_number(value)
    if isinstance(default, (tuple, list)):
        return isinstance(value, (tuple, list)) and len(value) == len(default) and all(map(is_number, value))
    return type(value) is type(default)
