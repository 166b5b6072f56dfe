"""What a checkpoint file says about itself, read from its header without PyTorch.

``stylize styles``, ``info`` and ``apply`` on ONNX Runtime need a model's style names and
architecture, not its tensors; reading them must not cost a PyTorch import. The header
is untrusted: the JSON metadata is checked field by field (:func:`check_metadata`) and
every tensor's name, shape and type against the architecture it states
(:func:`check_tensors`), before anything is built or loaded.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open

from ..checks import is_int, shown
from ..config import MIN_SIZE
from ..errors import StylizeError, first_line
from ..io.weights import check_model_file
from .styles import check_style_name, normalize_name

FORMAT = "stylize"
FORMAT_VERSION = 1
META_KEY = "stylize"
TRAIN_PREFIX = "train."
"""Tensors under this prefix are the optimizer's state, kept for ``--resume``."""


@dataclass(frozen=True)
class Header:
    """A checkpoint's checked metadata and its tensors' (shape, type) from the file's header."""

    meta: dict[str, Any]
    tensors: dict[str, tuple[tuple[int, ...], str]]


def read_header(path: Path) -> Header:
    """The header of checkpoint ``path`` with its metadata checked, no tensor read, or a one-line error."""
    path = Path(path)
    check_model_file(path)
    try:
        with safe_open(str(path), framework="numpy") as handle:
            raw = (handle.metadata() or {}).get(META_KEY)
            found = {k: (tuple(handle.get_slice(k).get_shape()), handle.get_slice(k).get_dtype())
                     for k in handle.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise StylizeError(f"{path}: not a readable safetensors checkpoint ({first_line(exc)})") from None
    if raw is None:
        raise StylizeError(f"{path}: a safetensors file, but not a stylize checkpoint (no '{META_KEY}' metadata)")
    try:
        meta = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        raise StylizeError(f"{path}: checkpoint metadata is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise StylizeError(f"{path}: not a stylize checkpoint")
    check_metadata(meta, path)
    check_tensors(path, found, meta)
    return Header(meta, found)


MAX_CHANNELS = 65_536
MAX_RESIDUAL_BLOCKS = 1024
MAX_STYLES = 1_000_000
"""Far beyond any real network; a checkpoint claiming more is refused before anything is built."""
MAX_WORK_SIZE = 65_536
"""The largest work size a style may store: far beyond any photo a network is painted at."""

LAYER_KINDS: dict[str, tuple[Any, ...]] = {
    "separable": (False, True),
    "upsample": ("nearest", "shuffle"),
    "outer_kernel": (9, 7, 5, 3),
    "full_res": (True, False),
}
"""The values each layer-kind field of a :class:`~stylize.config.NetConfig` may take. The
first is the default, which is what a checkpoint written before the field existed means."""


def layer_kind(config: dict[str, Any], key: str) -> Any:
    """``config[key]``, or the default of that layer kind (:data:`LAYER_KINDS`) if absent."""
    return config.get(key, LAYER_KINDS[key][0])


def check_metadata(meta: dict[str, Any], path: Path) -> dict[str, Any]:
    """``meta`` if every field a checkpoint needs is there with the right type and range.

    Checkpoints are shared files: nothing in them is trusted. Style names follow the
    rule of ``add-style`` (:func:`stylize.model.styles.check_style_name`), so a name can
    neither leave an output folder (``/``) nor fake lines on a terminal (control
    characters), and no two names match the same ``--style``.
    """
    def bad(what: str) -> StylizeError:
        return StylizeError(f"{path}: bad checkpoint metadata: {what}")

    version = meta.get("format_version", 0)
    if not is_int(version):
        raise bad(f"format_version is {shown(version)}, not an integer")
    if version > FORMAT_VERSION:
        raise StylizeError(f"{path}: written by a newer stylize (format {version}); upgrade stylize")
    config = meta.get("config")
    if not isinstance(config, dict):
        raise bad("no architecture ('config')")
    channels = config.get("channels")
    if not (isinstance(channels, list) and len(channels) == 3
            and all(is_int(c) and 1 <= c <= MAX_CHANNELS for c in channels)):
        raise bad(f"channels is {shown(channels)}, not 3 integers from 1 to {MAX_CHANNELS}")
    for key, top in (("n_residual", MAX_RESIDUAL_BLOCKS), ("n_styles", MAX_STYLES)):
        value = config.get(key)
        if not (is_int(value) and (key == "n_residual" or value >= 1) and 0 <= value <= top):
            raise bad(f"{key} is {shown(value)}, not an integer up to {top}")
    for key, kinds in LAYER_KINDS.items():
        value = layer_kind(config, key)
        if not any(value == kind and type(value) is type(kind) for kind in kinds):
            raise bad(f"{key} is {shown(value)}, not one of {', '.join(map(str, kinds))}")
    styles = meta.get("styles")
    if not (isinstance(styles, list) and all(isinstance(name, str) for name in styles)):
        raise bad("no list of style names")
    if len(styles) != config["n_styles"]:
        raise StylizeError(f"{path}: metadata names {len(styles)} styles but the network has {config['n_styles']}")
    keys: dict[str, str] = {}
    for name in styles:
        try:
            check_style_name(name)
        except StylizeError as exc:
            raise StylizeError(f"{path}: bad style name in the checkpoint: {exc}") from None
        if normalize_name(name) in keys:
            raise bad(f"styles {keys[normalize_name(name)]!r} and {name!r} would match the same --style")
        keys[normalize_name(name)] = name
    try:
        check_work_sizes(meta.get("work_sizes", {}), styles)
    except StylizeError as exc:
        raise bad(str(exc)) from None
    step = meta.get("step", 0)
    if not (is_int(step) and step >= 0):
        raise bad(f"step is {shown(step)}, not a count of steps")
    for key, kind, default in (("training", dict, {}), ("loss_network", str, None), ("stylize_version", str, "")):
        value = meta.get(key, default)
        if value is not default and not isinstance(value, kind):
            raise bad(f"{key} is {shown(value)}, not a {'mapping' if kind is dict else 'string'}")
    groups = meta.get("optimizer_param_groups")
    if groups is not None and not (isinstance(groups, list) and all(
            isinstance(g, dict) and isinstance(g.get("params"), list) and all(is_int(i) for i in g["params"])
            for g in groups)):
        raise bad("optimizer_param_groups is not a list of parameter groups")
    return meta


def check_work_sizes(sizes: object, styles: list[str]) -> dict[str, int]:
    """``sizes`` (style name -> work size, as a checkpoint or graph stores them) if every name is
    one of ``styles`` and every size is 0 (paint at full resolution) or from :data:`~stylize.config.MIN_SIZE`
    to :data:`MAX_WORK_SIZE`.

    A style without an entry has no size of its own (the default applies); names are exact, so
    that a renamed or removed style cannot leave a size that some other style would pick up.
    """
    if not isinstance(sizes, dict):
        raise StylizeError(f"work_sizes is {shown(sizes)}, not a mapping of style names to sizes")
    for name, size in sizes.items():
        if name not in styles:
            raise StylizeError(f"work_sizes names {shown(name)}, which is not one of the model's styles")
        if not (is_int(size) and (size == 0 or MIN_SIZE <= size <= MAX_WORK_SIZE)):
            raise StylizeError(f"the work size of {name!r} is {shown(size)}, not 0 (full resolution) "
                               f"or an integer from {MIN_SIZE} to {MAX_WORK_SIZE}")
    return dict(sizes)


_FLOAT_TYPES = frozenset({"F16", "BF16", "F32", "F64"})
_OPTIMIZER_KEY = re.compile(rf"{re.escape(TRAIN_PREFIX)}(\d{{1,9}})\.([A-Za-z_]\w*)")


def check_tensors(path: Path, found: dict[str, tuple[tuple[int, ...], str]], meta: dict[str, Any]) -> None:
    """Refuse tensors (``found``: name -> (shape, type) from the file's header) that do not fit
    the architecture in ``meta`` (:func:`tensor_shapes`: no network is built, whatever sizes
    the file claims)."""
    def bad(what: str) -> StylizeError:
        return StylizeError(f"{path}: weights do not match the architecture in its metadata ({what})")

    expected = tensor_shapes(meta["config"])
    weights = {k: v for k, v in found.items() if not k.startswith(TRAIN_PREFIX)}
    missing = sorted(expected.keys() - weights.keys())
    unexpected = sorted(weights.keys() - expected.keys())
    if missing or unexpected:
        raise bad(f"missing {missing[0]!r}" if missing else f"unexpected {unexpected[0]!r}")
    for key, (shape, dtype) in sorted(found.items()):
        if dtype not in _FLOAT_TYPES:
            raise bad(f"{key!r} holds {dtype}, not floating-point numbers")
        if key in expected and shape != expected[key]:
            raise bad(f"{key!r} has shape {list(shape)}, expected {list(expected[key])}")
        if key.startswith(TRAIN_PREFIX) and not _OPTIMIZER_KEY.fullmatch(key):
            raise StylizeError(f"{path}: bad optimizer state name {key!r}")
    if len(found) > len(weights) and meta.get("optimizer_param_groups") is None:
        raise StylizeError(f"{path}: bad checkpoint metadata: optimizer state without optimizer_param_groups")


def tensor_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The weights' names and shapes of a :class:`~stylize.model.network.StyleNet` with ``config``
    (a checked checkpoint ``config``), told without PyTorch; ``tests/test_checkpoint.py``
    holds it to the network's own ``state_dict`` for every preset."""
    c1, c2, c3 = config["channels"]
    n = config["n_styles"]
    k, sep, full = (layer_kind(config, key) for key in ("outer_kernel", "separable", "full_res"))
    up = 4 if layer_kind(config, "upsample") == "shuffle" else 1
    # name: (input channels, output channels, kernel, separable, output channels per norm channel)
    layers = {"down.0": (3, c1, k, False, 1), "down.1": (c1, c2, 3, sep, 1), "down.2": (c2, c3, 3, sep, 1)}
    for i in range(config["n_residual"]):
        layers |= {f"res.{i}.a": (c3, c3, 3, sep, 1), f"res.{i}.b": (c3, c3, 3, sep, 1)}
    layers |= {"up.0": (c3, c2, 3, sep, up), "up.1": (c2, c1, 3, sep, up if full else 1)}
    shapes: dict[str, tuple[int, ...]] = {}
    for name, (c_in, c_out, kernel, separable, per) in layers.items():
        width = c_out * per
        if separable:
            shapes |= {f"{name}.conv.0.weight": (c_in, 1, kernel, kernel), f"{name}.conv.1.weight": (width, c_in, 1, 1),
                       f"{name}.conv.1.bias": (width,)}
        else:
            shapes |= {f"{name}.conv.weight": (width, c_in, kernel, kernel), f"{name}.conv.bias": (width,)}
        shapes |= {f"{name}.norm.weight": (n, c_out), f"{name}.norm.bias": (n, c_out)}
    rgb = 3 if full else 12
    return shapes | {"out_conv.weight": (rgb, c1, k, k), "out_conv.bias": (rgb,)}


def check_finite(path: Path) -> None:
    """Refuse a checkpoint whose tensors hold NaN or infinite values (read with NumPy, no torch)."""
    import numpy as np

    try:
        with safe_open(str(path), framework="numpy") as handle:
            finite = all(np.isfinite(handle.get_tensor(key)).all() for key in handle.keys())
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise StylizeError(f"{path}: not a readable safetensors checkpoint ({first_line(exc)})") from None
    if not finite:
        raise StylizeError(f"{path}: the weights hold NaN or infinite values (a training run that diverged?)")
