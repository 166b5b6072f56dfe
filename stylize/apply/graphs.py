"""Where a checkpoint's ONNX graph comes from: beside it, from the cache, or made once.

``apply`` on ONNX Runtime runs a graph of the checkpoint (:mod:`stylize.model.onnx_export`),
never the checkpoint itself, so it needs no PyTorch once a graph exists. A graph is
looked for, in order:

1. beside the checkpoint, ``MODEL.onnx``: the shipped models' graphs travel that way
   in ``weights/`` and in the wheel, and ``stylize export --onnx`` can put one there;
2. in the cache, ``cache_dir()/onnx/<sha256 of the checkpoint>-v<GRAPH_VERSION>.onnx``;
3. else it is made from the checkpoint (with PyTorch; the caller is told first, as it
   takes seconds) and cached for the next time.

Graphs are untrusted like checkpoints: one is used only if it is a regular file (not a
symlink), it is the checkpoint's (:func:`made_from`: its metadata names the sha256 of this
checkpoint's bytes and this :data:`GRAPH_VERSION` and holds the checkpoint's styles, work
sizes and architecture, and its weights are the checkpoint's tensors exactly), and ONNX
Runtime opens it. Anything else (empty, truncated, corrupt, another checkpoint's graph, an
older layout, one edited) is passed over and the graph made again; a cache that cannot be
written costs a warning and the making of the graph on the next run, never the rendering.
"""

from __future__ import annotations

import json
import os
import stat
import warnings
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np
from safetensors import SafetensorError, safe_open

from ..errors import StylizeError
from ..io.atomic import write_atomically
from ..io.weights import cache_dir, file_sha256
from ..model.header import LAYER_KINDS, TRAIN_PREFIX, Header, layer_kind, read_header
from ..runtime.extras import require
from . import onnx_wire

GRAPH_VERSION = 4
"""The layout of the exported graph (inputs, outputs, metadata): bump when it changes."""

SOURCE_KEY = "checkpoint_sha256"
"""Metadata key of the graph: the sha256 of the checkpoint file it was made from."""

VERSION_KEY = "graph_version"
"""Metadata key of the graph: its :data:`GRAPH_VERSION`."""

MAX_GRAPH_BYTES = 2**31
"""Protobuf's limit on a serialized model; a larger file is no graph of ours."""

Opened = TypeVar("Opened")


def beside(model: Path) -> Path:
    """The graph shipped or exported next to checkpoint ``model``: same name, ``.onnx``."""
    return model.with_suffix(".onnx")


def cached(digest: str) -> Path:
    """Where the graph of the checkpoint with sha256 ``digest`` is cached."""
    return cache_dir() / "onnx" / f"{digest[:32]}-v{GRAPH_VERSION}.onnx"


def graph_metadata(digest: str) -> dict[str, str]:
    """The metadata that keys a graph to its checkpoint (added by the exporter)."""
    return {SOURCE_KEY: digest, VERSION_KEY: str(GRAPH_VERSION)}


def open_graph(model: Path, opener: Callable[[bytes], Opened], on_make: Callable[[Path], None] | None = None) -> Opened:
    """``opener(graph bytes)`` for the graph of checkpoint ``model``, found or made (module docstring).

    The checkpoint's header is checked first (:func:`~stylize.model.header.read_header`),
    so a checkpoint with bad metadata is refused even where a graph of it exists.
    ``opener`` returns what it made of the bytes, or raises :class:`StylizeError` for bytes
    that are no usable graph. ``on_make(model)`` is called before a graph is made
    (:func:`make_graph`).
    """
    header = read_header(model)  # a bad checkpoint is refused in one line, whatever graph there may be
    try:
        digest = file_sha256(model)
    except OSError as exc:
        raise StylizeError(f"{model}: cannot read ({exc.strerror or exc})") from None
    passed_over: list[Path] = []
    for path in (beside(model), cached(digest)):
        data = read_regular_file(path)
        if data is None:
            continue
        if made_from(data, model, digest, header):
            try:
                return opener(data)
            except StylizeError:
                pass
        passed_over.append(path)
    has = f"has no usable ONNX graph ({passed_over[0]} is not its own)" if passed_over else "has no ONNX graph yet"
    require("torch", f"{model} {has}, and making one")
    data = make_graph(model, digest, on_make)
    store(cached(digest), data)
    return opener(data)


def made_from(data: bytes, model: Path, digest: str, header: Header) -> bool:
    """Whether graph ``data`` is what this version exports from checkpoint ``model`` (sha256 ``digest``,
    its checked ``header``): its metadata names them and holds their styles, work sizes and
    architecture, and its weights are the checkpoint's tensors, exactly. A graph edited, or damaged
    where ONNX Runtime would not notice, renders wrong; the operators are the exporter's, recognized by
    the version and the sha256."""
    metadata = onnx_wire.metadata(data)
    if metadata is None or metadata.get(SOURCE_KEY) != digest or metadata.get(VERSION_KEY) != str(GRAPH_VERSION):
        return False
    try:
        same = (json.loads(metadata["styles"]) == header.meta["styles"]
                and json.loads(metadata.get("work_sizes", "{}")) == header.meta.get("work_sizes", {})
                and same_architecture(json.loads(metadata["config"]), header.meta["config"]))
    except (KeyError, ValueError, TypeError, AttributeError, RecursionError):
        return False
    return same and same_weights(onnx_wire.initializers(data), model)


def same_architecture(graph: Any, checkpoint: dict[str, Any]) -> bool:
    """Whether a graph's ``config`` metadata is the checkpoint's (layer kinds it omits at their defaults)."""
    return (all(graph[key] == checkpoint[key] for key in ("channels", "n_residual", "n_styles"))
            and all(layer_kind(graph, key) == layer_kind(checkpoint, key) for key in LAYER_KINDS))


ROWS = {"out_conv.weight": lambda w: w.transpose(0, 2, 1, 3).reshape(-1, w.shape[1], 1, w.shape[3]),
        "out_conv.bias": lambda b: b.reshape(1, -1, 1, 1)}
"""How the exporter stores the last convolution where it traces it as rows
(:func:`~stylize.model.onnx_export.graph_forward`): under names of its own, in these shapes."""

PRIORS = ("prior_mean", "prior_var", "prior_weight")
"""The graph's optional inputs, whose defaults are zeros (:mod:`stylize.model.onnx_export`)."""


def same_weights(found: dict[str, np.ndarray] | None, model: Path) -> bool:
    """Whether a graph's initializers ``found`` are checkpoint ``model``'s tensors (as float32), each
    under ``net.NAME`` or in its row form (:data:`ROWS`), with the zero priors and nothing else."""
    if found is None:
        return False
    found = dict(found)
    try:
        with safe_open(str(model), framework="numpy") as handle:
            tensors = {key: handle.get_tensor(key) for key in handle.keys() if not key.startswith(TRAIN_PREFIX)}
    except (SafetensorError, OSError, ValueError, TypeError):
        return False  # numpy reads no bfloat16: such a checkpoint's graph is made again
    for key, tensor in tensors.items():
        expected = tensor.astype(np.float32)
        if f"net.{key}" in found:
            if not np.array_equal(found.pop(f"net.{key}"), expected):
                return False
        elif key in ROWS:
            rows = ROWS[key](expected)
            name = next((name for name, value in found.items() if not name.startswith("net.")
                         and name not in PRIORS and np.array_equal(value, rows)), None)
            if name is None:
                return False
            del found[name]
        else:
            return False
    return sorted(found) == sorted(PRIORS) and not any(np.any(found[name]) for name in PRIORS)


def read_regular_file(path: Path) -> bytes | None:
    """The bytes of ``path`` if it is a regular file (a symlink is not followed), else None.

    Opened without blocking: a FIFO planted in its place would otherwise wait for a writer forever.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or not 0 < info.st_size <= MAX_GRAPH_BYTES:
            return None
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read(MAX_GRAPH_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)


def make_graph(model: Path, digest: str, on_make: Callable[[Path], None] | None = None) -> bytes:
    """The ONNX graph of checkpoint ``model`` (whose sha256 is ``digest``), made with PyTorch;
    ``on_make(model)`` once the checkpoint has loaded (a bad one is only its error)."""
    from ..model import checkpoint
    from ..model.onnx_export import graph_bytes

    ckpt = checkpoint.load(model)
    if on_make is not None:
        on_make(model)
    return graph_bytes(ckpt, graph_metadata(digest))


def export_graph(model: Path, output: Path, *, overwrite: bool = False) -> list[str]:
    """Write the graph of checkpoint ``model`` to ``output`` (``stylize export --onnx``); return its styles.

    The graph carries the checkpoint's sha256 like a cached one, so ``apply`` takes it as
    ``model``'s own when it lies beside ``model`` (:func:`beside`). An existing ``output``
    is replaced only with ``overwrite``, ``model`` itself never. Needs PyTorch.
    """
    require("torch", "stylize export --onnx")
    from ..model import checkpoint
    from ..model.edits import check_output
    from ..model.onnx_export import export_onnx

    model, output = Path(model), Path(output)
    check_output(model, output, overwrite=overwrite)
    ckpt = checkpoint.load(model)
    export_onnx(ckpt, output, graph_metadata(file_sha256(model)))
    return ckpt.styles


def store(path: Path, data: bytes) -> None:
    """Cache a graph atomically; if the cache cannot be written, warn and go on without it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, data)
    except OSError as exc:
        warnings.warn(f"could not cache the ONNX graph in {path.parent} ({exc.strerror or exc}); "
                      "it is made again on the next run", RuntimeWarning, stacklevel=3)
