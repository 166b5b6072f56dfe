"""Fast paths: the ways :class:`stylize.Stylizer` can run the same network, named for choosing and timing.

A fast path is a ``+``-joined spec such as ``fp16+cl+graphs``; each token switches one thing on:

=============  ==================================================================================
``fp32``       plain fp32 (on CUDA, convolutions still use TF32 as PyTorch's default allows)
``fp16``       fp16 autocast (see :mod:`stylize.apply.torch_backend` for why fp16 rather than bf16)
``bf16``       bf16 autocast
``cl``         channels-last activations (NHWC, the layout tensor cores read)
``gn``         instance norm as ``group_norm`` with one group per channel, each image's gamma and
               beta as its affine (NCHW; on CUDA it makes a channels-last input NCHW, so not with ``cl``)
``cnorm``      instance norm, affine and ReLU as one ``torch.compile``'d function (Inductor fuses them)
``compile``    the whole network through ``torch.compile(mode="max-autotune-no-cudagraphs")``
``compile-ro`` the whole network through ``torch.compile(mode="reduce-overhead")`` (CUDA graphs of
               Inductor's kernels)
``graphs``     the eager network captured as one CUDA graph per input shape and replayed
               (:class:`stylize.apply.fast.GraphRunner`; CUDA only)
``bench``      cuDNN's autotuner (``torch.backends.cudnn.benchmark``) on during each pass
``pad8``       the RGB-end convolutions zero-padded to 8 channels on CUDA, for tensor-core kernels
=============  ==================================================================================

Exactly one precision token; the others in any order, each at most once; ``compile``,
``compile-ro`` and ``graphs`` exclude each other (each replaces how the network is run).
Which path ``apply`` takes on CUDA is :data:`stylize.config.CUDA_FAST_PATH`, one value, set from
what ``benchmarks/gpu_check.py`` measured; elsewhere the default is plain ``fp32``. Torch-free,
so the CLI can check a spec before anything heavy is imported.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import CUDA_FAST_PATH
from ..errors import StylizeError

PRECISION_TOKENS = ("fp32", "fp16", "bf16")
NORMS = {"gn": "group", "cnorm": "compiled"}
COMPILE_MODES = {"compile": "max-autotune-no-cudagraphs", "compile-ro": "reduce-overhead"}
RUNNERS = ("compile", "compile-ro", "graphs")
TOKENS = (*PRECISION_TOKENS, "cl", *NORMS, *COMPILE_MODES, "graphs", "bench", "pad8")


@dataclass(frozen=True)
class FastPath:
    """One resolved fast path; :func:`parse_fast_path` makes it from a spec, :attr:`name` gives the spec back."""

    precision: str = "fp32"
    channels_last: bool = False
    norm: str = "batch"
    """``batch`` (batch norm per image, :func:`stylize.model.norm.conditional_instance_norm`), ``group`` or ``compiled``."""
    compile_mode: str | None = None
    cuda_graphs: bool = False
    cudnn_benchmark: bool = False
    pad_channels: bool = False

    @property
    def name(self) -> str:
        tokens = [self.precision]
        tokens += ["cl"] if self.channels_last else []
        tokens += [token for token, norm in NORMS.items() if norm == self.norm]
        tokens += [token for token, mode in COMPILE_MODES.items() if mode == self.compile_mode]
        tokens += ["graphs"] if self.cuda_graphs else []
        tokens += ["bench"] if self.cudnn_benchmark else []
        tokens += ["pad8"] if self.pad_channels else []
        return "+".join(tokens)


def parse_fast_path(spec: str) -> FastPath:
    """A spec such as ``fp16+cl+graphs`` as a :class:`FastPath`; a one-line error if it is not one."""
    tokens = [token.strip() for token in spec.lower().split("+")]
    unknown = [token for token in tokens if token not in TOKENS]
    if unknown:
        raise StylizeError(f"unknown fast path part {unknown[0]!r} in {spec!r}; parts: {', '.join(TOKENS)}")
    if len(set(tokens)) != len(tokens):
        raise StylizeError(f"fast path {spec!r} names a part twice")
    precisions = [token for token in tokens if token in PRECISION_TOKENS]
    if len(precisions) != 1:
        raise StylizeError(f"fast path {spec!r} needs exactly one precision ({', '.join(PRECISION_TOKENS)})")
    norms = [NORMS[token] for token in tokens if token in NORMS]
    runners = [token for token in tokens if token in RUNNERS]
    if len(norms) > 1 or len(runners) > 1:
        raise StylizeError(f"fast path {spec!r}: choose one of {', '.join(NORMS)} and one of {', '.join(RUNNERS)}")
    return FastPath(precision=precisions[0], channels_last="cl" in tokens, norm=norms[0] if norms else "batch",
                    compile_mode=COMPILE_MODES.get(runners[0]) if runners else None,
                    cuda_graphs="graphs" in tokens, cudnn_benchmark="bench" in tokens, pad_channels="pad8" in tokens)


def resolve_fast_path(spec: str, device_type: str) -> FastPath:
    """``auto``: :data:`~stylize.config.CUDA_FAST_PATH` on CUDA, plain fp32 elsewhere; any other spec as given.

    CUDA graphs on another device are refused here, before any work.
    """
    if spec.strip().lower() == "auto":
        return parse_fast_path(CUDA_FAST_PATH) if device_type == "cuda" else FastPath()
    path = parse_fast_path(spec)
    if path.cuda_graphs and device_type != "cuda":
        raise StylizeError(f"fast path {spec!r}: CUDA graphs need a CUDA device, not {device_type}")
    return path
