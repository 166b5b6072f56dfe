"""Reference network for speed comparisons: the classic fast-style-transfer TransformerNet.

A fresh, eager fp32 implementation of the layout popularised by the ``pytorch/examples``
``fast_neural_style`` example (Johnson et al. 2016 with instance norm): reflection-padded
convolutions, ``nn.InstanceNorm2d(affine=True)``, five residual blocks, nearest-neighbour
upsampling followed by a convolution, and an unbounded output. It has one style and no
conditional norm, so it is the *floor* of what a plain PyTorch implementation costs;
every figure in ``benchmarks/speed.py`` is printed as a ratio to this network measured in
the same run on the same device.

It is not used by the library; its weights are random (speed does not depend on them).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class ConvLayer(nn.Module):
    """Reflection padding (kernel // 2) then a convolution."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(kernel // 2)
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.pad(x))


class UpsampleConvLayer(nn.Module):
    """Nearest-neighbour x2 upsampling, then a reflection-padded convolution."""

    def __init__(self, c_in: int, c_out: int, kernel: int, scale: int = 2) -> None:
        super().__init__()
        self.scale = scale
        self.layer = ConvLayer(c_in, c_out, kernel)

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(F.interpolate(x, scale_factor=self.scale, mode="nearest"))


class ResidualBlock(nn.Module):
    """conv-IN-ReLU-conv-IN plus the identity."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, 3)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, 3)
        self.in2 = nn.InstanceNorm2d(channels, affine=True)

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.in1(self.conv1(x)))
        return x + self.in2(self.conv2(y))


class TransformerNet(nn.Module):
    """(N, 3, H, W) -> (N, 3, H, W); H and W multiples of 4."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.in1 = ConvLayer(3, 32, 9), nn.InstanceNorm2d(32, affine=True)
        self.conv2, self.in2 = ConvLayer(32, 64, 3, stride=2), nn.InstanceNorm2d(64, affine=True)
        self.conv3, self.in3 = ConvLayer(64, 128, 3, stride=2), nn.InstanceNorm2d(128, affine=True)
        self.res = nn.Sequential(*[ResidualBlock(128) for _ in range(5)])
        self.up1, self.in4 = UpsampleConvLayer(128, 64, 3), nn.InstanceNorm2d(64, affine=True)
        self.up2, self.in5 = UpsampleConvLayer(64, 32, 3), nn.InstanceNorm2d(32, affine=True)
        self.out = ConvLayer(32, 3, 9)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.in1(self.conv1(x)))
        x = F.relu(self.in2(self.conv2(x)))
        x = F.relu(self.in3(self.conv3(x)))
        x = self.res(x)
        x = F.relu(self.in4(self.up1(x)))
        x = F.relu(self.in5(self.up2(x)))
        return self.out(x)


def flops_per_pixel() -> float:
    """Multiply-adds x 2 per input pixel of the convolutions (norms, pads ignored)."""
    layers = [  # (c_in, c_out, kernel, output pixels per input pixel)
        (3, 32, 9, 1), (32, 64, 3, 1 / 4), (64, 128, 3, 1 / 16),
        *[(128, 128, 3, 1 / 16)] * 10,
        (128, 64, 3, 1 / 4), (64, 32, 3, 1), (32, 3, 9, 1),
    ]
    return sum(2 * ci * co * k * k * frac for ci, co, k, frac in layers)
