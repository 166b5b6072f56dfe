"""Process-wide state: what only the program that owns the process may change.

Importing stylize changes none of it. The ``stylize`` command makes one call,
:func:`own_process`, in every command that reads photos or runs a network; a program
using the library calls what it wants of this module itself. Torch-free, so the CLI
makes the call before it knows whether PyTorch or ONNX Runtime will render.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass


def own_process() -> EngineOptions:
    """Set what the ``stylize`` command sets for its whole process; returns the speed engine's options.

    * Pillow's own pixel limit is switched off: every open checks ``--max-pixels``
      itself (:func:`stylize.io.images.check_pixels`), so that limit is the only one;
    * glibc keeps freed memory for reuse (:func:`keep_freed_memory`), unless
      ``STYLIZE_MALLOC_TUNING=0``;
    * ``STYLIZE_NNPACK=0``, ``STYLIZE_CHANNELS_LAST=0|1`` and ``STYLIZE_FAST_PATH=SPEC`` choose
      the engine's paths, for measuring (:meth:`EngineOptions.from_env`).
    """
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    if os.environ.get("STYLIZE_MALLOC_TUNING", "1") != "0":
        keep_freed_memory()
    return EngineOptions.from_env()


def one_blas_thread() -> None:
    """Run numpy's BLAS on one thread, unless the user chose otherwise; call before numpy is imported.

    numpy's OpenBLAS starts a worker thread for every other core when it loads, and each one
    spins, waiting for work, for a while before it sleeps. The apply side multiplies no large
    matrices in numpy, so the workers only take a core from ONNX Runtime while the first photo
    renders. Set in the environment because OpenBLAS reads it once, when it loads; the
    ``stylize`` command's entry point sets it for its own process (and what it starts).
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def keep_freed_memory() -> bool:
    """Make glibc keep freed large blocks for reuse instead of returning them to the OS.

    PyTorch's CPU allocator is plain ``malloc``; glibc serves every block over 32 MB
    with a fresh ``mmap``, so each large activation is page-faulted in (and zeroed by
    the kernel) again on every layer of every image, which costs more than the
    arithmetic around it. Raising ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD`` makes
    the heap hold on to them, like CUDA's caching allocator does; the cost is that the
    process keeps its peak memory until it exits. Process-wide, so only a program that
    owns its process calls it (:func:`own_process` does). Linux/glibc only; returns
    whether it took.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes  # here: the entry point imports this module for one_blas_thread, before every command

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl, ...)
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    try:
        return bool(libc.mallopt(m_mmap_threshold, 1 << 30)) and bool(libc.mallopt(m_trim_threshold, (1 << 31) - 1))
    except AttributeError:
        return False


_ON = ("1", "true", "yes", "on")
_OFF = ("0", "false", "no", "off")


@dataclass(frozen=True)
class EngineOptions:
    """Which rewrites :class:`stylize.model.engine.FastStyleNet` may use; the defaults are the fastest measured.

    ``channels_last``: ``None`` chooses (on for CPU inference: oneDNN's convolutions and
    PyTorch's batch norm are fastest in NHWC there; off for training, where batch norm's
    per-image split and oneDNN's backward prefer NCHW, and on CUDA as the fast path says);
    ``True`` / ``False`` force it. ``nnpack``: allow NNPACK for the CPU
    inference convolutions where it wins (:func:`nnpack_wins`). ``fast_path``: how
    :class:`stylize.Stylizer` runs the network (a spec of :mod:`stylize.runtime.variants`;
    ``auto``: :data:`stylize.config.CUDA_FAST_PATH` on CUDA, fp32 elsewhere); training ignores it.
    """

    channels_last: bool | None = None
    nnpack: bool = True
    fast_path: str = "auto"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "EngineOptions":
        """The options ``STYLIZE_CHANNELS_LAST=0|1``, ``STYLIZE_NNPACK=0`` and ``STYLIZE_FAST_PATH`` ask for."""
        layout = environ.get("STYLIZE_CHANNELS_LAST", "auto").lower()
        channels_last = True if layout in _ON else False if layout in _OFF else None
        return cls(channels_last=channels_last, nnpack=environ.get("STYLIZE_NNPACK", "1").lower() not in _OFF,
                   fast_path=environ.get("STYLIZE_FAST_PATH", "auto"))
