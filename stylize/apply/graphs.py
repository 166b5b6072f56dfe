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
symlink), ONNX Runtime opens it, and its metadata names the sha256 of this checkpoint's
bytes and this :data:`GRAPH_VERSION`. Anything else (empty, truncated, corrupt, another
checkpoint's graph, an older layout) is passed over and the graph made again; a cache
that cannot be written costs a warning and the making of the graph on the next run,
never the rendering.
"""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path
from typing import Callable, Mapping, TypeVar

from ..errors import StylizeError
from ..io.atomic import write_atomically
from ..io.weights import cache_dir, file_sha256
from ..model.header import read_header
from ..runtime.extras import require

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


def open_graph(model: Path, opener: Callable[[bytes], tuple[Opened, Mapping[str, str]]],
               on_make: Callable[[Path], None] | None = None) -> Opened:
    """``opener(graph bytes)`` for the graph of checkpoint ``model``, found or made (module docstring).

    The checkpoint's header is checked first (:func:`~stylize.model.header.read_header`),
    so a checkpoint with bad metadata is refused even where a graph of it exists.
    ``opener`` returns what it made of the bytes and the graph's metadata, or raises
    :class:`StylizeError` for bytes that are no usable graph. ``on_make(model)`` is
    called before a graph is made (:func:`make_graph`).
    """
    read_header(model)  # a bad checkpoint is refused in one line, whatever graph there may be
    try:
        digest = file_sha256(model)
    except OSError as exc:
        raise StylizeError(f"{model}: cannot read ({exc.strerror or exc})") from None
    for path in (beside(model), cached(digest)):
        data = read_regular_file(path)
        if data is None:
            continue
        try:
            opened, metadata = opener(data)
        except StylizeError:
            continue
        if metadata.get(SOURCE_KEY) == digest and metadata.get(VERSION_KEY) == str(GRAPH_VERSION):
            return opened
    require("torch", f"{model} has no ONNX graph yet, and making one")
    data = make_graph(model, digest, on_make)
    store(cached(digest), data)
    return opener(data)[0]


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
