"""The feed-forward style network (Johnson et al. 2016 layout, conditional IN everywhere).

Layout: 9x9 conv, two stride-2 convs, residual blocks, two (nearest upsample + conv)
stages, 9x9 conv to RGB and a sigmoid. Choices that matter for image quality:

* upsampling is nearest-neighbour then convolution, not a transposed convolution,
  which paints checkerboards;
* every convolution pads by reflection, which together with instance norm avoids
  dark or bright borders;
* the output is a sigmoid into [0, 1]: with an unbounded output, training with this
  loss network diverged.

Widths, depth and two layer kinds come from :class:`NetConfig`, which is stored in
every checkpoint, so smaller presets (for CPUs) load with the same code. The ``fast``
preset, distilled from the ``johnson`` one (:mod:`stylize.train.distill`), swaps the layers that
cost most on a CPU for cheaper ones of the same shape, and keeps conditional instance
norm after every convolution, so its styles are rows of (gamma, beta) like the others':

* depthwise-separable residual blocks (a 3x3 per-channel conv, then a 1x1 conv): about
  1/9 of a full 3x3 convolution's multiply-adds at that width;
* pixel-shuffle upsampling: a 3x3 conv at the *low* resolution to 4x the channels,
  rearranged into a 2x larger map, instead of convolving the upsampled map (which costs
  4x the multiply-adds and, in ONNX Runtime, writes the 4x larger copy first).

This module is the network as the paper draws it, layer by layer: what a reader,
``torch.onnx.export`` and ``torch.compile`` see. :mod:`stylize.model.engine` computes the same
function faster on this machine's hardware; ``tests/test_speed_paths.py`` holds the two
to agreement.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ALIGN, NetConfig, check_size
from ..errors import StylizeError
from .header import LAYER_KINDS
from .norm import ConditionalInstanceNorm2d


class SeparableConv2d(nn.Sequential):
    """A depthwise ``kernel`` x ``kernel`` convolution (one filter per channel, ``stride``), then a 1x1 one.

    No bias on the depthwise part: the pointwise bias already shifts every output channel.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__(nn.Conv2d(c_in, c_in, kernel, stride, groups=c_in, bias=False), nn.Conv2d(c_in, c_out, 1))


class ConvNormAct(nn.Module):
    """Reflection-padded conv, conditional IN, optional ReLU; optionally upsampling x2.

    ``upsample``: ``""`` (none), ``"nearest"`` (nearest x2 before the conv) or ``"shuffle"``
    (the conv makes 4x ``c_out`` channels, pixel-shuffled into a 2x larger map before the norm).
    ``separable``: the conv is a :class:`SeparableConv2d`.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, n_styles: int, stride: int = 1,
                 upsample: str = "", relu: bool = True, separable: bool = False) -> None:
        super().__init__()
        self.upsample = upsample
        self.relu = relu
        self.pad = nn.ReflectionPad2d(kernel // 2)
        width = c_out * 4 if upsample == "shuffle" else c_out
        if separable:
            self.conv: nn.Module = SeparableConv2d(c_in, width, kernel, stride)
        else:
            self.conv = nn.Conv2d(c_in, width, kernel, stride)
        self.norm = ConditionalInstanceNorm2d(c_out, n_styles)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        if self.upsample == "nearest":
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.conv(self.pad(x))
        if self.upsample == "shuffle":
            x = F.pixel_shuffle(x, 2)
        x = self.norm(x, style)
        return F.relu(x) if self.relu else x


class ResidualBlock(nn.Module):
    """Two 3x3 conv (full or depthwise-separable) + IN layers with an identity shortcut."""

    def __init__(self, channels: int, n_styles: int, separable: bool = False) -> None:
        super().__init__()
        self.a = ConvNormAct(channels, channels, 3, n_styles, separable=separable)
        self.b = ConvNormAct(channels, channels, 3, n_styles, relu=False, separable=separable)

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
        if config.upsample not in LAYER_KINDS["upsample"] or config.outer_kernel not in LAYER_KINDS["outer_kernel"]:
            raise StylizeError(f"unknown layer kinds: upsample {config.upsample!r}, outer kernel {config.outer_kernel!r}")
        self.config = config
        c1, c2, c3 = config.channels
        n, k, sep, full = config.n_styles, config.outer_kernel, config.separable, config.full_res
        self.down = nn.ModuleList([
            ConvNormAct(3, c1, k, n, stride=1 if full else 2),
            ConvNormAct(c1, c2, 3, n, stride=2, separable=sep),
            ConvNormAct(c2, c3, 3, n, stride=2 if full else 1, separable=sep),
        ])
        self.res = nn.ModuleList([ResidualBlock(c3, n, separable=sep) for _ in range(config.n_residual)])
        self.up = nn.ModuleList([
            ConvNormAct(c3, c2, 3, n, upsample=config.upsample, separable=sep),
            ConvNormAct(c2, c1, 3, n, upsample=config.upsample if full else "", separable=sep),
        ])
        self.out_pad = nn.ReflectionPad2d(k // 2)
        self.out_conv = nn.Conv2d(c1, 3 if full else 12, k)
        self.out_shuffle = 1 if full else 2

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

    def output(self, x: Tensor) -> Tensor:
        """The last convolution's output as RGB: pixel-shuffled when it predicts 2x2 blocks."""
        return F.pixel_shuffle(x, self.out_shuffle) if self.out_shuffle > 1 else x

    def forward(self, x: Tensor, style: Tensor | int) -> Tensor:
        h, w = x.shape[-2:]
        x, weights = self.prepare(x, style)
        for layer in self.down:
            x = layer(x, weights)
        for block in self.res:
            x = block(x, weights)
        for layer in self.up:
            x = layer(x, weights)
        x = torch.sigmoid(self.output(self.out_conv(self.out_pad(x))))
        return x[..., :h, :w]
