"""The feed-forward style network (Johnson et al. 2016 layout, conditional IN everywhere).

Layout: 9x9 conv, two stride-2 convs, residual blocks, two (nearest upsample + conv)
stages, 9x9 conv to RGB and a sigmoid. Choices that matter for image quality:

* upsampling is nearest-neighbour then convolution, not a transposed convolution,
  which paints checkerboards;
* every convolution pads by reflection, which together with instance norm avoids
  dark or bright borders;
* the output is a sigmoid into [0, 1]: with an unbounded output, training with this
  loss network diverged.

Widths and depth come from :class:`NetConfig`, which is stored in every checkpoint,
so smaller presets (for CPUs) load with the same code.

This module is the network as the paper draws it, layer by layer: what a reader,
``torch.onnx.export`` and ``torch.compile`` see. :mod:`stylize.engine` computes the same
function faster on this machine's hardware; ``tests/test_speed_paths.py`` holds the two
to agreement.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .norm import ConditionalInstanceNorm2d
from .render import ALIGN, check_size


@dataclass(frozen=True)
class NetConfig:
    """Architecture of a :class:`StyleNet`; saved in checkpoints."""

    channels: tuple[int, int, int] = (32, 64, 128)
    n_residual: int = 5
    n_styles: int = 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "NetConfig":
        return cls(channels=tuple(data["channels"]), n_residual=int(data["n_residual"]), n_styles=int(data["n_styles"]))


PRESETS: dict[str, NetConfig] = {
    "johnson": NetConfig(),
    "small": NetConfig(channels=(16, 32, 64), n_residual=3),
}
"""Named architectures: ``johnson`` is the paper's network, ``small`` is for CPUs."""


class ConvNormAct(nn.Module):
    """Reflection-padded conv, conditional IN, optional ReLU; optional nearest upsample first."""

    def __init__(self, c_in: int, c_out: int, kernel: int, n_styles: int, stride: int = 1,
                 upsample: bool = False, relu: bool = True) -> None:
        super().__init__()
        self.upsample = upsample
        self.relu = relu
        self.pad = nn.ReflectionPad2d(kernel // 2)
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride)
        self.norm = ConditionalInstanceNorm2d(c_out, n_styles)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.norm(self.conv(self.pad(x)), style)
        return F.relu(x) if self.relu else x


class ResidualBlock(nn.Module):
    """Two 3x3 conv + IN layers with an identity shortcut."""

    def __init__(self, channels: int, n_styles: int) -> None:
        super().__init__()
        self.a = ConvNormAct(channels, channels, 3, n_styles)
        self.b = ConvNormAct(channels, channels, 3, n_styles, relu=False)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        return x + self.b(self.a(x, style), style)


class StyleNet(nn.Module):
    """Image in, stylized image out: (N, 3, H, W) RGB in [0, 1] -> same shape, in [0, 1].

    ``style`` is per sample: a LongTensor (N,) of style indices, or a float tensor
    (N, n_styles) of mixing weights. Any H, W >= 8 works; internally the image is
    reflection-padded to a multiple of 4 and the output is cropped back.
    """

    def __init__(self, config: NetConfig = NetConfig()) -> None:
        super().__init__()
        self.config = config
        c1, c2, c3 = config.channels
        n = config.n_styles
        self.down = nn.ModuleList([
            ConvNormAct(3, c1, 9, n),
            ConvNormAct(c1, c2, 3, n, stride=2),
            ConvNormAct(c2, c3, 3, n, stride=2),
        ])
        self.res = nn.ModuleList([ResidualBlock(c3, n) for _ in range(config.n_residual)])
        self.up = nn.ModuleList([
            ConvNormAct(c3, c2, 3, n, upsample=True),
            ConvNormAct(c2, c1, 3, n, upsample=True),
        ])
        self.out_pad = nn.ReflectionPad2d(4)
        self.out_conv = nn.Conv2d(c1, 3, 9)

    @property
    def n_styles(self) -> int:
        return self.config.n_styles

    def style_weights(self, style: Tensor | int, batch: int) -> Tensor:
        """Turn indices or mixing weights into (N, n_styles) float weights."""
        if isinstance(style, int):
            style = torch.full((batch,), style, dtype=torch.long)
        if style.dtype in (torch.int32, torch.int64):
            if style.ndim == 0:
                style = style.expand(batch)
            return F.one_hot(style, self.n_styles).float().to(self.out_conv.weight.device)
        if style.ndim == 1:
            style = style.expand(batch, -1)
        return style.float().to(self.out_conv.weight.device)

    def prepare(self, x: Tensor, style: Tensor | int) -> tuple[Tensor, Tensor]:
        """``x`` reflection-padded to a multiple of :data:`ALIGN`, and the (N, n_styles) style weights."""
        h, w = x.shape[-2:]
        check_size(h, w)
        weights = self.style_weights(style, x.shape[0])
        ph, pw = -h % ALIGN, -w % ALIGN
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect")
        return x, weights

    def forward(self, x: Tensor, style: Tensor | int) -> Tensor:
        h, w = x.shape[-2:]
        x, weights = self.prepare(x, style)
        for layer in self.down:
            x = layer(x, weights)
        for block in self.res:
            x = block(x, weights)
        for layer in self.up:
            x = layer(x, weights)
        x = torch.sigmoid(self.out_conv(self.out_pad(x)))
        return x[..., :h, :w]
