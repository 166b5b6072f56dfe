"""ONNX Runtime sessions that open fast: each graph's optimized form, cached per machine.

Opening a session spends most of its time optimizing the graph (fusions, the CPU's
blocked layout), the same work on every ``apply``. ONNX Runtime can save the graph it
optimized; opening that one with optimizations off skips the work and runs the same
kernels. The optimized graph depends on the ONNX Runtime version and on the CPU's
instruction set (the blocked layout's width), so its cache key holds both beside the
sha256 of the graph's bytes: ``cache_dir()/onnx/optimized/<key>.onnx``.

The cache is untrusted: an entry is used only if it is a regular file, ONNX Runtime opens
it, and its metadata equals the source graph's (read from the source's bytes by
:func:`~stylize.apply.onnx_wire.metadata`, which needs no ONNX Runtime). Anything else is
passed over and replaced. It is only a shortcut: a cache that cannot be written costs the optimization on
the next call, silently; a graph whose metadata cannot be read is opened as before.
"""

from __future__ import annotations

import hashlib
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .. import DISTRIBUTION
from ..errors import StylizeError, first_line
from ..io.atomic import replace_atomically
from ..io.weights import cache_dir
from . import onnx_wire
from .graphs import read_regular_file

QUIET = 4
"""ONNX Runtime's log severity for fatal errors only: a failed call raises, and says why, anyway."""


def open_session(graph: Path | bytes, threads: int | None, initializers: Mapping[str, np.ndarray] | None = None) -> Any:
    """An ONNX Runtime session of ``graph`` on the CPU, quiet (errors come back as exceptions,
    never as ONNX Runtime's own log lines on stderr), from the optimized cache when it can.

    ``initializers`` replace the graph's of the same names when the session is made (a
    learned style's rows, :class:`~stylize.apply.onnx_backend.LearnedStyle`). The optimized
    graph saved to the cache keeps the originals, so they are replaced on every opening; a
    cached graph that no longer holds one of those names is passed over."""
    initializers = initializers or {}
    try:
        import onnxruntime as ort
    except ImportError:
        raise StylizeError(f"the ONNX backend needs onnxruntime: pip install '{DISTRIBUTION}'") from None
    data = graph
    if isinstance(graph, Path):
        try:
            data = graph.read_bytes()
        except OSError as exc:
            raise StylizeError(f"{graph}: cannot read ({exc.strerror or exc})") from None
    metadata = onnx_wire.metadata(data)
    if metadata is None:
        return _session(ort, data, threads, graph, initializers)
    path = optimized_path(ort.__version__, data)
    cached = read_regular_file(path)
    if cached is not None and all(name.encode() in cached for name in initializers):
        try:
            session = _session(ort, cached, threads, graph, initializers, optimize=False)
        except StylizeError:
            session = None
        if session is not None and dict(session.get_modelmeta().custom_metadata_map) == metadata:
            return session
    made: list[Any] = []
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_atomically(path, lambda tmp: made.append(_session(ort, data, threads, graph, initializers,
                                                                   save_to=tmp)))
    except OSError:
        pass  # an unwritable cache: the session below is the same, only not remembered
    return made[0] if made else _session(ort, data, threads, graph, initializers)


def _session(ort: Any, data: bytes, threads: int | None, graph: Path | bytes, initializers: Mapping[str, np.ndarray],
             *, optimize: bool = True, save_to: Path | None = None) -> Any:
    """A CPU session of ``data`` with ``initializers`` replaced: optimized (saving the result to
    ``save_to``), or as it is."""
    options = ort.SessionOptions()
    options.log_severity_level = QUIET
    if threads:
        options.intra_op_num_threads = threads
    values = [(name, ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array, np.float32)))
              for name, array in initializers.items()]
    for name, value in values:
        options.add_initializer(name, value)
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if save_to is not None:
        options.optimized_model_filepath = str(save_to)
    try:
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ONNX Runtime's errors (InvalidProtobuf, Fail, ...) derive from Exception only
        raise StylizeError(f"{describe(graph)}: not a usable ONNX graph ({first_line(exc)})") from None
    session.stylize_initializers = values  # ONNX Runtime reads them for as long as the session lives
    return session


def describe(graph: Path | bytes) -> str:
    """A graph's name in messages: its file, or what it is."""
    return str(graph) if isinstance(graph, Path) else "the ONNX graph"


def optimized_path(runtime_version: str, data: bytes) -> Path:
    """Where the optimized form of graph ``data`` is cached, for this runtime and CPU."""
    key = hashlib.sha256()
    for part in (runtime_version.encode(), cpu_signature().encode(), data):
        key.update(hashlib.sha256(part).digest())
    return cache_dir() / "onnx" / "optimized" / f"{key.hexdigest()[:32]}.onnx"


def cpu_signature() -> str:
    """The machine and its CPU's feature flags: what ONNX Runtime's layout choices depend on.

    Where there is no ``/proc/cpuinfo`` (macOS, Windows) the processor's name stands in for the
    flags; on Linux ``platform.processor()`` would only run ``uname -p`` in a subprocess.
    """
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            flags = next((line for line in handle if line.startswith(("flags", "Features"))), "")
    except OSError:
        return f"{platform.machine()} {platform.processor()}"
    return f"{platform.machine()} {' '.join(sorted(flags.split()))}"
