"""The architecture's facts: sizes the network needs, its config and the named presets."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import StylizeError

MIN_SIZE = 8
"""Smallest input side: the network sees it at 1/4 scale, where a 3x3 reflection pad needs 2 px."""

ALIGN = 4
"""The network downsamples by 4; tiles start on multiples of it to keep the same pixel grid."""


def check_size(height: int, width: int) -> None:
    """Refuse, in one line, an image too small for the network (on either backend)."""
    if min(height, width) < MIN_SIZE:
        raise StylizeError(f"image is {width}x{height} px; the network needs at least {MIN_SIZE} px on each side")


@dataclass(frozen=True)
class NetConfig:
    """Architecture of a :class:`~stylize.model.network.StyleNet`; saved in checkpoints."""

    channels: tuple[int, int, int] = (32, 64, 128)
    n_residual: int = 5
    n_styles: int = 1
    separable: bool = False
    """Every 3x3 convolution (all but the first and the last) depthwise-separable: depthwise 3x3, then 1x1."""
    upsample: str = "nearest"
    """Upsampling stages: ``nearest`` (upsample, then 3x3 conv) or ``shuffle`` (3x3 conv, then pixel shuffle)."""
    outer_kernel: int = 9
    """Kernel size of the first and the last convolution."""
    full_res: bool = True
    """Whether the first and the last convolution run at full resolution. If not, the first strides by 2
    and the last predicts every 2x2 block (pixel shuffle), so no feature map is at full size; the second
    stride-2 convolution and the last upsampling stage then keep their resolution (depth stays 1/4)."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "NetConfig":
        """The config in ``data``; checkpoints written before the layer kinds existed get the defaults."""
        return cls(channels=tuple(data["channels"]), n_residual=int(data["n_residual"]), n_styles=int(data["n_styles"]),
                   separable=bool(data.get("separable", cls.separable)), upsample=data.get("upsample", cls.upsample),
                   outer_kernel=int(data.get("outer_kernel", cls.outer_kernel)),
                   full_res=bool(data.get("full_res", cls.full_res)))


PRESETS: dict[str, NetConfig] = {
    "johnson": NetConfig(),
    "small": NetConfig(channels=(16, 32, 64), n_residual=3),
    "fast": NetConfig(channels=(16, 32, 64), n_residual=4, separable=True, upsample="shuffle", outer_kernel=3,
                      full_res=False),
    "full8": NetConfig(channels=(8, 32, 64), n_residual=4, separable=True, upsample="shuffle", outer_kernel=3),
}
"""Named architectures: ``johnson`` is the paper's network, ``small`` and ``fast`` are for CPUs
(``fast`` chosen by measured ONNX Runtime time: ``benchmarks/student_candidates.py``). ``full8`` is
``fast`` with its first and last convolution at full resolution (8 channels there): about the same
multiply-adds, and it learned the teacher better in a distillation comparison
(``benchmarks/README.md``, "What a candidate learns"); the next student's candidate."""
