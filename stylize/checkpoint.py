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
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as serialize
from torch import Tensor

from . import __version__
from .atomic import write_atomically, write_failure
from .errors import StylizeError
from .weights import check_model_file
from .network import NetConfig, StyleNet

FORMAT = "stylize"
FORMAT_VERSION = 1
_META_KEY = "stylize"
_TRAIN_PREFIX = "train."


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

    def metadata(self) -> dict[str, Any]:
        """What `stylize styles` shows: everything but the tensors."""
        return {
            "styles": self.styles,
            "config": self.net.config.to_dict(),
            "step": self.step,
            "training": self.training,
            "loss_network": self.loss_network,
            "stylize_version": self.version,
        }


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, Tensor], list[dict[str, Any]]]:
    tensors = {}
    for index, per_param in state["state"].items():
        for key, value in per_param.items():
            tensors[f"{_TRAIN_PREFIX}{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    return tensors, state["param_groups"]


def _unflatten_optimizer(tensors: dict[str, Tensor], groups: list[dict[str, Any]]) -> dict[str, Any]:
    state: dict[int, dict[str, Tensor]] = {}
    for name, value in tensors.items():
        index, key = name[len(_TRAIN_PREFIX):].split(".", 1)
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
    data = serialize(tensors, metadata={_META_KEY: json.dumps(meta)})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        created = write_atomically(path, data, replace=overwrite)
    except OSError as exc:
        raise StylizeError(f"cannot write checkpoint {path}: {write_failure(exc, path, len(data))}") from None
    if not created:
        raise StylizeError(f"{path} already exists; pass --overwrite to replace it")


def read_metadata(path: Path) -> dict[str, Any]:
    """The JSON metadata of a checkpoint, checked, without loading its tensors."""
    from safetensors import safe_open

    path = Path(path)
    check_model_file(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = (handle.metadata() or {}).get(_META_KEY)
    except (SafetensorError, OSError, ValueError) as exc:
        raise StylizeError(f"{path}: not a readable safetensors checkpoint ({_first_line(exc)})") from None
    if raw is None:
        raise StylizeError(f"{path}: a safetensors file, but not a stylize checkpoint (no '{_META_KEY}' metadata)")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError:
        raise StylizeError(f"{path}: checkpoint metadata is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise StylizeError(f"{path}: not a stylize checkpoint")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise StylizeError(f"{path}: written by a newer stylize (format {meta['format_version']}); upgrade stylize")
    return meta


def stores_half(path: Path) -> bool:
    """Whether the network's weights are stored in fp16 (as ``export`` writes them by default).

    Read from the file's tensor headers without loading them, so that an edit of a lean
    model (``remove-style``, ``rename-style``) can keep its size instead of doubling it.
    """
    from safetensors import safe_open

    path = Path(path)
    read_metadata(path)
    with safe_open(str(path), framework="pt") as handle:
        dtypes = {handle.get_slice(key).get_dtype() for key in handle.keys() if not key.startswith(_TRAIN_PREFIX)}
    return dtypes == {"F16"}


def load(path: Path, *, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint into a ready network (eval mode, fp32), or raise a one-line error."""
    path = Path(path)
    meta = read_metadata(path)
    try:
        tensors = load_file(str(path), device=str(map_location))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise StylizeError(f"{path}: checkpoint is corrupt or truncated ({_first_line(exc)})") from None
    try:
        config = NetConfig.from_dict(meta["config"])
        styles = [str(s) for s in meta["styles"]]
    except (KeyError, TypeError, ValueError):
        raise StylizeError(f"{path}: checkpoint metadata lacks a valid architecture or style list") from None
    if len(styles) != config.n_styles:
        raise StylizeError(f"{path}: metadata names {len(styles)} styles but the network has {config.n_styles}")
    net = StyleNet(config)
    weights = {k: v.float() for k, v in tensors.items() if not k.startswith(_TRAIN_PREFIX)}
    try:
        net.load_state_dict(weights)
    except RuntimeError as exc:
        raise StylizeError(f"{path}: weights do not match the architecture in its metadata ({_first_line(exc)})") from None
    net.to(map_location).eval()
    train = {k: v for k, v in tensors.items() if k.startswith(_TRAIN_PREFIX)}
    optimizer_state = _unflatten_optimizer(train, meta["optimizer_param_groups"]) if train else None
    return Checkpoint(
        net=net,
        styles=styles,
        training=meta.get("training", {}),
        loss_network=meta.get("loss_network"),
        step=int(meta.get("step", 0)),
        optimizer_state=optimizer_state,
        version=str(meta.get("stylize_version", "")),
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
