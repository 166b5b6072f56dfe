"""The speed engine: :class:`~stylize.model.network.StyleNet`'s function, computed the way this hardware runs fastest.

:meth:`StyleNet.forward <stylize.model.network.StyleNet.forward>` is the network as the paper
draws it. :class:`FastStyleNet` wraps one and computes the same function with rewrites
that change the arithmetic's order but not its result (``tests/test_speed_paths.py`` is
the contract: they agree to float rounding; 8-bit output moves by at most one level).
:class:`stylize.Stylizer` and the training loop opt into it explicitly:

* instance norm, gamma, beta and the ReLU are one batch-norm call per image plus an
  in-place ReLU (:func:`stylize.model.norm.conditional_instance_norm`);
* "nearest x2 upsample, reflection pad 1, 3x3 conv" is a 2x2 convolution with 4x the
  output channels on the *small* input (padded by edge replication), whose outputs are
  interleaved: each output pixel's 3x3 window over the upsampled image covers only 2x2
  distinct input pixels, so the 3x3 kernel collapses to four 2x2 kernels. That is 4/9
  of the multiply-adds and never materializes the 4x larger upsampled tensor
  (:func:`upsample_conv`);
* for CPU inference, activations are channels-last (oneDNN's native layout) except around
  NNPACK, which runs the 3x3 residual convolutions (Winograd) and the last 9x9 one (FFT)
  in NCHW (:meth:`FastStyleNet.conv`); without NNPACK the last 9x9 convolution (3 output
  channels, which oneDNN pads to 16) is a 1x9 convolution to 3x9 channels followed by a
  sum of 9 row-shifted planes (:func:`conv_by_rows`).

Importing this module changes nothing outside it. The one process-wide setting that
helps, glibc keeping freed memory (:func:`stylize.runtime.process.keep_freed_memory`), is made
only by the program that owns the process (the CLI), as are the environment switches
(:meth:`stylize.runtime.process.EngineOptions.from_env`); both are torch-free, so the CLI sets
them up before it knows whether PyTorch will run. Figures: ``benchmarks/README.md``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..runtime.process import EngineOptions
from .network import ConvNormAct, ResidualBlock, StyleNet
from .norm import conditional_instance_norm, formula_instance_norm, group_instance_norm


class FastStyleNet(nn.Module):
    """``FastStyleNet(net)(x, style)`` equals ``net(x, style)``, computed faster.

    Holds ``net`` (its parameters, train/eval mode and norm statistics are the wrapped
    network's own), so an optimizer, DDP or a checkpoint can keep working on ``net``.
    """

    def __init__(self, net: StyleNet, options: EngineOptions = EngineOptions(), norm: str = "batch",
                 pad_channels: bool = False) -> None:
        """``norm``: how inference without shared statistics normalizes: ``batch``
        (:func:`~stylize.model.norm.conditional_instance_norm`, also what training and tiling use),
        ``group`` (:func:`~stylize.model.norm.group_instance_norm`) or ``compiled``
        (:func:`~stylize.model.norm.formula_instance_norm` through ``torch.compile``, compiled on first use).
        ``pad_channels``: convolutions with channel counts off multiples of 8 (the RGB ends) run
        zero-padded to them on CUDA (:func:`padded_conv`)."""
        super().__init__()
        self.net = net
        self.options = options
        self._nnpack: bool | None = None if options.nnpack else False
        if norm not in ("batch", "group", "compiled"):
            raise ValueError(f"FastStyleNet: unknown norm {norm!r}")
        self.norm = norm
        self.pad_channels = pad_channels
        # dynamic: one kernel pair for every layer's shape, rather than one compilation per shape
        # until the recompilation limit (8) sends later shapes back to eager
        self._fused_norm = (group_instance_norm if norm == "group" else
                            torch.compile(formula_instance_norm, dynamic=True) if norm == "compiled" else None)
        self.train(net.training)

    def forward(self, x: Tensor, style: Tensor | int) -> Tensor:
        net = self.net
        h, w = x.shape[-2:]
        x, weights = net.prepare(x, style)
        channels_last = self.channels_last(x.device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        for layer in net.down:
            x = self.layer(layer, x, weights)
        if net.res and self.uses_nnpack(x, net.res[0].a.conv):
            x = relayout(x, channels_last=False)  # NNPACK takes NCHW; the blocks' norms and sums follow
        for block in net.res:
            x = self.block(block, x, weights)
        if channels_last:
            x = relayout(x, channels_last=True)
        for layer in net.up:
            x = self.layer(layer, x, weights)
        nnpack_out = self.uses_nnpack(x, net.out_conv)
        if nnpack_out:
            x = relayout(x, channels_last=False)
        x = pad2d(x, net.out_conv.kernel_size[0] // 2, "reflect")
        if x.device.type == "cpu" and net.out_conv.out_channels < 8 and not nnpack_out:
            x = conv_by_rows(x, net.out_conv)
        else:
            x = self.conv(x, net.out_conv)
        x = net.output(x)
        x = torch.sigmoid_(x) if not torch.is_grad_enabled() else torch.sigmoid(x)
        return x[..., :h, :w].contiguous()

    def channels_last(self, device: torch.device) -> bool:
        """Whether activations run channels-last now: as the options say, else for CPU inference."""
        if self.options.channels_last is not None:
            return self.options.channels_last
        return device.type == "cpu" and not torch.is_grad_enabled()

    def layer(self, layer: ConvNormAct, x: Tensor, weights: Tensor) -> Tensor:
        """``layer(x, weights)``, with the upsampling folded into the kernels; ``x`` in any memory layout."""
        if layer.upsample == "nearest" and isinstance(layer.conv, nn.Conv2d):
            y = upsample_conv(x, layer.conv)
        else:
            if layer.upsample == "nearest":
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            y = self.conv(pad2d(x, layer.pad.padding[0], "reflect"), layer.conv)
            if layer.upsample == "shuffle":
                y = F.pixel_shuffle(y, 2)
        gamma, beta = layer.norm.affine(weights)
        if self._fused_norm is not None and layer.norm.stats is None and not torch.is_grad_enabled():
            return self._fused_norm(y, gamma, beta, relu=layer.relu)
        return conditional_instance_norm(y, gamma, beta, layer.norm.stats, relu=layer.relu)

    def block(self, block: ResidualBlock, x: Tensor, weights: Tensor) -> Tensor:
        """``block(x, weights)``, summing in place when no gradient needs the operands."""
        y = self.layer(block.b, self.layer(block.a, x, weights), weights)
        return y.add_(x) if not torch.is_grad_enabled() else x + y

    def uses_nnpack(self, x: Tensor, conv: nn.Module) -> bool:
        """Whether :meth:`conv` sends this convolution of ``x`` to NNPACK."""
        if not nnpack_wins(x, conv):
            return False
        if self._nnpack is None:
            self._nnpack = nnpack_available()
        return self._nnpack

    def conv(self, x: Tensor, conv: nn.Module) -> Tensor:
        """``conv(x)``, through NNPACK where it wins (output NCHW then), else PyTorch's own."""
        if self.pad_channels and x.device.type == "cuda" and isinstance(conv, nn.Conv2d) and conv.groups == 1:
            return padded_conv(x, conv)
        if not self.uses_nnpack(x, conv):
            return conv(x)
        try:
            return nnpack_conv2d(x, conv)
        except RuntimeError:  # a shape or build NNPACK refuses: PyTorch's convolution from now on
            self._nnpack = False
            return conv(x)


def padded_conv(x: Tensor, conv: nn.Conv2d, multiple: int = 8) -> Tensor:
    """``conv(x)`` with input and output channels zero-padded to a ``multiple``, the padding then dropped.

    Tensor-core convolution kernels take channel counts in multiples of 8; the 3-channel ends
    of a style network (the 9x9 convolutions on the full-resolution image) otherwise run on
    slower kernels. Zero input channels with zero weights add nothing, so the result is the
    convolution's own (the output's extra channels are sliced off, a view).
    """
    c_out, c_in = conv.weight.shape[:2]
    more_in, more_out = -c_in % multiple, -c_out % multiple
    if not more_in and not more_out:
        return conv(x)
    weight = F.pad(conv.weight, (0, 0, 0, 0, 0, more_in, 0, more_out))
    bias = F.pad(conv.bias, (0, more_out)) if conv.bias is not None else None
    if more_in:
        x = F.pad(x, (0, 0, 0, 0, 0, more_in))  # constant zeros; keeps a channels-last layout
    y = F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation)
    return y[:, :c_out] if more_out else y


def relayout(x: Tensor, channels_last: bool) -> Tensor:
    """``x`` in NCHW or channels-last memory, converted with blocked 2-D transposes.

    ``Tensor.contiguous()`` from channels-last to NCHW with many channels lands each
    element on another page; per image, the conversion is a (H*W, C) <-> (C, H*W) matrix
    transpose, for which PyTorch has a cache-blocked kernel. Autograd-safe (slice copies).
    """
    target = torch.channels_last if channels_last else torch.contiguous_format
    if x.is_contiguous(memory_format=target):
        return x
    n, c, h, w = x.shape
    if x.device.type != "cpu" or c < 8 or x.dim() != 4:
        return x.contiguous(memory_format=target)
    source_cl = x.is_contiguous(memory_format=torch.channels_last)
    if not source_cl and not x.is_contiguous():
        return x.contiguous(memory_format=target)
    out = torch.empty((n, c, h, w), dtype=x.dtype, device=x.device, memory_format=target)
    for i in range(n):
        if channels_last:  # (C, HW) -> (HW, C)
            out[i].permute(1, 2, 0).view(h * w, c).copy_(x[i].view(c, h * w).t())
        else:  # (HW, C) -> (C, HW)
            out[i].view(c, h * w).copy_(x[i].permute(1, 2, 0).reshape(h * w, c).t())
    return out


def pad2d(x: Tensor, p: int, mode: str) -> Tensor:
    """``F.pad(x, (p, p, p, p), mode)`` for "reflect" or "replicate", keeping a channels-last layout.

    ``F.pad`` turns some channels-last inputs into NCHW outputs through a transposing
    copy that costs far more than the padding itself; this writes the middle and then
    the four borders into a tensor of the input's layout instead.
    """
    if not x.is_contiguous(memory_format=torch.channels_last) or x.is_contiguous() or p == 0:
        return F.pad(x, (p, p, p, p), mode=mode)
    n, c, h, w = x.shape
    out = torch.empty((n, c, h + 2 * p, w + 2 * p), dtype=x.dtype, device=x.device,
                      memory_format=torch.channels_last)
    out[:, :, p:p + h, p:p + w] = x
    if mode == "reflect":
        out[:, :, :p, p:p + w] = x[:, :, 1:p + 1].flip(2)
        out[:, :, p + h:, p:p + w] = x[:, :, h - p - 1:h - 1].flip(2)
        out[:, :, :, :p] = out[:, :, :, p + 1:2 * p + 1].flip(3)
        out[:, :, :, p + w:] = out[:, :, :, w - 1:w + p - 1].flip(3)
    elif mode == "replicate":
        out[:, :, :p, p:p + w] = x[:, :, :1]
        out[:, :, p + h:, p:p + w] = x[:, :, h - 1:]
        out[:, :, :, :p] = out[:, :, :, p:p + 1]
        out[:, :, :, p + w:] = out[:, :, :, p + w - 1:p + w]
    else:
        raise ValueError(f"pad2d: unsupported mode {mode!r}")
    return out


def subpixel_kernels(weight: Tensor) -> Tensor:
    """The four 2x2 kernels equivalent to a 3x3 ``weight`` applied after nearest x2 upsampling.

    Output pixel ``(2i + a, 2j + b)`` of "upsample, then 3x3 conv" sees input rows
    ``i - 1, i, i`` (a = 0) or ``i, i, i + 1`` (a = 1), likewise for columns, so the
    kernel rows that land on the same input row add up. Returns ``(4 * C_out, C_in, 2, 2)``,
    phases in the order (a, b) = (0, 0), (0, 1), (1, 0), (1, 1).
    """
    def fold(w: Tensor, dim: int) -> tuple[Tensor, Tensor]:
        k0, k1, k2 = w.unbind(dim)
        return torch.stack([k0, k1 + k2], dim), torch.stack([k0 + k1, k2], dim)

    phases = []
    for rows in fold(weight, 2):
        phases.extend(fold(rows, 3))
    return torch.cat(phases, 0)


def upsample_conv(x: Tensor, conv: nn.Conv2d) -> Tensor:
    """``conv(reflection_pad_1(nearest_upsample_x2(x)))`` for a 3x3 ``conv``, without the upsampling.

    Reflection padding by 1 of a nearest-upsampled image equals upsampling the image
    padded by edge replication, so the small input is padded by replication and the
    four phase kernels (:func:`subpixel_kernels`) run on it as one 2x2 convolution;
    phase (a, b) at (i, j) sits at (i + a, j + b) of that output. The result has
    ``x``'s memory layout.
    """
    n, _, h, w = x.shape
    c_out = conv.out_channels
    kernels = subpixel_kernels(conv.weight)
    bias = conv.bias.repeat(4) if conv.bias is not None else None
    y = F.conv2d(pad2d(x, 1, "replicate"), kernels, bias)  # (n, 4 * c_out, h + 1, w + 1)
    layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) and x.shape[1] > 1 \
        else torch.contiguous_format
    out = torch.empty((n, c_out, 2 * h, 2 * w), dtype=y.dtype, device=y.device, memory_format=layout)
    for k, (a, b) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        out[:, :, a::2, b::2] = y[:, k * c_out:(k + 1) * c_out, a:a + h, b:b + w]
    return out


def conv_by_rows(x: Tensor, conv: nn.Conv2d) -> Tensor:
    """A valid (unpadded) square ``conv`` with few output channels, as a 1xk conv then a row sum.

    ``out[o, y] = sum_dy t[o, dy, y + dy]`` where ``t`` is the 1xk convolution with
    ``C_out * k`` outputs: the same multiply-adds, but in a shape oneDNN runs near its
    peak (it pads output channels to 16, so 3 outputs waste 13/16 of the work). The sum
    is done in fp32 and NCHW; the result is NCHW.
    """
    c_out, c_in, k, _ = conv.weight.shape
    n, _, hp, wp = x.shape
    h, w = hp - k + 1, wp - k + 1
    rows = conv.weight.permute(0, 2, 1, 3).reshape(c_out * k, c_in, 1, k)  # channel o * k + dy
    t = F.conv2d(x, rows).float().contiguous().view(n, c_out, k, hp, w)
    out = t[:, :, 0, 0:h]
    if conv.bias is not None:
        out = out + conv.bias.float().view(1, c_out, 1, 1)
    else:
        out = out.clone()
    inplace = not torch.is_grad_enabled()
    for dy in range(1, k):
        out = out.add_(t[:, :, dy, dy:dy + h]) if inplace else out + t[:, :, dy, dy:dy + h]
    return out


def nnpack_available() -> bool:
    """NNPACK is compiled in and initialized (``torch._nnpack_available()`` initializes it)."""
    try:
        return bool(hasattr(torch, "_nnpack_spatial_convolution") and torch._nnpack_available())
    except (RuntimeError, AttributeError):
        return False


def nnpack_wins(x: Tensor, conv: nn.Module) -> bool:
    """Whether NNPACK beats oneDNN on this CPU inference convolution.

    NNPACK's Winograd F(6x6, 3x3) does a 3x3 convolution with ~1/5 of the multiplies
    and its FFT does a large kernel with few outputs in a fraction of oneDNN's time
    (which pads 3 output channels to 16). Winograd's rounding is ~1e-5 relative per
    layer, far below what an 8-bit image shows. Only for stride 1, fp32, no autograd
    (training keeps oneDNN), and only where it wins: 3x3 with >= 32 input channels and
    large kernels with few outputs. Never for other modules (a depthwise-separable pair).
    """
    if not isinstance(conv, nn.Conv2d):
        return False
    if x.device.type != "cpu" or x.dtype != torch.float32 or torch.is_grad_enabled():
        return False
    if conv.stride != (1, 1) or conv.groups != 1 or conv.dilation != (1, 1) or conv.padding != (0, 0):
        return False
    k = conv.kernel_size[0]
    return (k == 3 and conv.in_channels >= 32) or (k >= 5 and conv.out_channels < 8)


NNPACK_STRIP_BYTES = 16 * 2**20
"""Input bytes per NNPACK call. NNPACK's FFT keeps the whole transformed input, several
GB for the 9x9 output conv of a 2048 px image in one call; strips of rows bound it and
stay in cache."""


def nnpack_conv2d(x: Tensor, conv: nn.Conv2d) -> Tensor:
    """``conv(x)`` through NNPACK, one image and one horizontal strip of rows at a time; NCHW out."""
    x = x.contiguous()
    weight, bias = conv.weight.contiguous(), conv.bias
    n, c_in, h_in, w_in = x.shape
    k = conv.kernel_size[0]
    h, w = h_in - k + 1, w_in - k + 1
    rows = max(16, NNPACK_STRIP_BYTES // (4 * c_in * w_in) - k + 1)
    out = torch.empty((n, conv.out_channels, h, w), dtype=x.dtype)
    for i in range(n):
        for top in range(0, h, rows):
            bottom = min(h, top + rows)
            out[i:i + 1, :, top:bottom] = torch._nnpack_spatial_convolution(
                x[i:i + 1, :, top:bottom + k - 1], weight, bias, [0, 0], [1, 1])
    return out
