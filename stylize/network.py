"""The feed-forward style network (Johnson et al. 2016 layout, conditional IN everywhere).

Layout: 9x9 conv, two stride-2 convs, residual blocks, two (nearest upsample + conv)
stages, 9x9 conv to RGB and a sigmoid. Choices that matter for image quality:

* upsampling is nearest-neighbour then convolution, not a transposed convolution,
  which paints checkerboards;
* every convolution pads by reflection, which together with instance norm avoids
  dark or bright borders;
* the output is a sigmoid into [0, 1]: with an unbounded output, training with this
  loss network was measured to diverge after ~8k steps.

Widths and depth come from :class:`NetConfig`, which is stored in every checkpoint,
so smaller presets (for CPUs) load with the same code.

Speed. :meth:`StyleNet.forward` computes exactly the function of
:meth:`StyleNet.forward_reference` (the layer-by-layer textbook form), with rewrites
that change the arithmetic's order but not its result (see ``tests/test_speed_paths.py``;
they agree to float rounding, >90 dB PSNR; 8-bit output moves by at most one level):

* instance norm, gamma, beta and the ReLU are one batch-norm call per image plus an
  in-place ReLU (:func:`stylize.norm.conditional_instance_norm`);
* "nearest x2 upsample, reflection pad 1, 3x3 conv" is a 2x2 convolution with 4x the
  output channels on the *small* input (padded by edge replication), whose outputs are
  interleaved: each output pixel's 3x3 window over the upsampled image covers only 2x2
  distinct input pixels, so the 3x3 kernel collapses to four 2x2 kernels. That is 4/9
  of the multiply-adds and never materializes the 4x larger upsampled tensor;
* for CPU inference, activations are channels-last (oneDNN's native layout) except around
  NNPACK, which runs the 3x3 residual convolutions (Winograd) and the last 9x9 one (FFT)
  in NCHW (:func:`conv2d`); without NNPACK the last 9x9 convolution (3 output channels,
  which oneDNN runs at ~1/5 of its peak) is a 1x9 convolution to 3x9 channels followed
  by a sum of 9 row-shifted planes (:func:`conv_by_rows`);
* on the first CPU forward, glibc is told to keep freed large blocks
  (:func:`keep_freed_memory`): re-faulting fresh pages for every activation cost more
  than the arithmetic.

The parameters, their names and shapes are untouched, so checkpoints are unaffected.
Measured figures: ``benchmarks/README.md``.
"""

from __future__ import annotations

import ctypes
import os
import sys
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import StylizeError
from .norm import ConditionalInstanceNorm2d
from .render import MIN_SIZE



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
        """The fast form (same function as :meth:`reference`); ``x`` in any memory layout."""
        if self.upsample:
            y = upsample_conv(x, self.conv)
        else:
            p = self.conv.kernel_size[0] // 2
            y = conv2d(pad2d(x, p, "reflect"), self.conv)
        return self.norm(y, style, relu=self.relu)

    def reference(self, x: Tensor, style: Tensor) -> Tensor:
        """The textbook form: upsample, pad, conv, instance norm, ReLU as separate steps."""
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.norm.reference(self.conv(self.pad(x)), style)
        return F.relu(x) if self.relu else x


class ResidualBlock(nn.Module):
    """Two 3x3 conv + IN layers with an identity shortcut."""

    def __init__(self, channels: int, n_styles: int) -> None:
        super().__init__()
        self.a = ConvNormAct(channels, channels, 3, n_styles)
        self.b = ConvNormAct(channels, channels, 3, n_styles, relu=False)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        y = self.b(self.a(x, style), style)
        return y.add_(x) if not torch.is_grad_enabled() else x + y

    def reference(self, x: Tensor, style: Tensor) -> Tensor:
        return x + self.b.reference(self.a.reference(x, style), style)


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

    def _prepare(self, x: Tensor, style: Tensor | int) -> tuple[Tensor, Tensor]:
        h, w = x.shape[-2:]
        if min(h, w) < MIN_SIZE:
            raise StylizeError(f"image is {w}x{h} px; the network needs at least {MIN_SIZE} px on each side")
        weights = self.style_weights(style, x.shape[0])
        ph, pw = -h % 4, -w % 4
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect")
        return x, weights

    def forward(self, x: Tensor, style: Tensor | int) -> Tensor:
        h, w = x.shape[-2:]
        x, weights = self._prepare(x, style)
        if x.device.type == "cpu":
            keep_freed_memory()
        if use_channels_last(x.device):
            x = x.contiguous(memory_format=torch.channels_last)
        for layer in self.down:
            x = layer(x, weights)
        if self.res and uses_nnpack(x, self.res[0].a.conv):
            x = relayout(x, channels_last=False)  # NNPACK takes NCHW; the blocks' norms and sums follow
        for block in self.res:
            x = block(x, weights)
        if use_channels_last(x.device):
            x = relayout(x, channels_last=True)
        for layer in self.up:
            x = layer(x, weights)
        if uses_nnpack(x, self.out_conv):
            x = relayout(x, channels_last=False)
        x = pad2d(x, self.out_conv.kernel_size[0] // 2, "reflect")
        if x.device.type == "cpu" and self.out_conv.out_channels < 8 and not uses_nnpack(x, self.out_conv):
            x = conv_by_rows(x, self.out_conv)
        else:
            x = conv2d(x, self.out_conv)
        x = torch.sigmoid_(x) if not torch.is_grad_enabled() else torch.sigmoid(x)
        return x[..., :h, :w].contiguous()

    def forward_reference(self, x: Tensor, style: Tensor | int) -> Tensor:
        """The same function as :meth:`forward`, computed step by step as the paper draws it.

        Slower; kept as the ground truth that tests and benchmarks compare the fast form with.
        """
        h, w = x.shape[-2:]
        x, weights = self._prepare(x, style)
        for layer in self.down:
            x = layer.reference(x, weights)
        for block in self.res:
            x = block.reference(x, weights)
        for layer in self.up:
            x = layer.reference(x, weights)
        x = torch.sigmoid(self.out_conv(self.out_pad(x)))
        return x[..., :h, :w]


# --------------------------------------------------------------------------- fast forms

def _channels_last_setting() -> str:
    return os.environ.get("STYLIZE_CHANNELS_LAST", "auto").lower()


def use_channels_last(device: torch.device) -> bool:
    """Whether the fast forward runs channels-last on ``device``.

    On by default for CPU inference (oneDNN's convolutions and PyTorch's batch norm are
    fastest there in NHWC: ~1.4x on the convolutions alone). Off for CPU training, where
    NCHW measured 1.25x faster for the network's forward + backward (batch norm's
    per-image split and oneDNN's backward prefer it), and off on CUDA, pending
    measurement on a GPU. ``STYLIZE_CHANNELS_LAST=1`` / ``0`` forces it either way.
    """
    setting = _channels_last_setting()
    if setting in ("1", "true", "yes", "on"):
        return True
    if setting in ("0", "false", "no", "off"):
        return False
    return device.type == "cpu" and not torch.is_grad_enabled()


def relayout(x: Tensor, channels_last: bool) -> Tensor:
    """``x`` in NCHW or channels-last memory, converted with blocked 2-D transposes.

    ``Tensor.contiguous()`` from channels-last to NCHW with 32 channels was measured at
    25x the time of a plain copy (each element lands on another page); per image, the
    conversion is a (H*W, C) <-> (C, H*W) matrix transpose, for which PyTorch has a
    cache-blocked kernel (3-6x faster here). Autograd-safe (slice copies).
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

    ``F.pad`` turns some channels-last inputs (32 x 1024 x 1024 here) into NCHW outputs
    through a transposing copy that took 30x longer than the padding itself; this writes
    the middle and then the four borders into a tensor of the input's layout instead.
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


def _nnpack_setting() -> bool:
    return os.environ.get("STYLIZE_NNPACK", "1").lower() not in ("0", "false", "no", "off")


_NNPACK_READY: bool | None = None


def _nnpack_ready() -> bool:
    """NNPACK is compiled in and initialized (``torch._nnpack_available()`` initializes it)."""
    global _NNPACK_READY
    if _NNPACK_READY is None:
        try:
            _NNPACK_READY = bool(hasattr(torch, "_nnpack_spatial_convolution") and torch._nnpack_available())
        except (RuntimeError, AttributeError):
            _NNPACK_READY = False
    return _NNPACK_READY


def uses_nnpack(x: Tensor, conv: nn.Conv2d) -> bool:
    """Whether :func:`conv2d` sends this CPU inference convolution to NNPACK.

    NNPACK's Winograd F(6x6, 3x3) does a 3x3 convolution with ~1/5 of the multiplies
    and its FFT does the 9x9 one with 3 outputs in a fraction of oneDNN's time (which
    pads 3 output channels to 16); measured on a 2-core AVX-512 VM, single thread:
    3x3 128->128 2.0x, 9x9 32->3 ~3x faster than oneDNN. Winograd's rounding is ~1e-5
    relative per layer, far below what an 8-bit image shows. Only for stride 1, fp32,
    no autograd (training keeps oneDNN), and only where it wins: 3x3 with >= 32 input
    channels and large kernels with few outputs. ``STYLIZE_NNPACK=0`` turns it off.
    """
    if x.device.type != "cpu" or x.dtype != torch.float32 or torch.is_grad_enabled():
        return False
    if conv.stride != (1, 1) or conv.groups != 1 or conv.dilation != (1, 1) or conv.padding != (0, 0):
        return False
    k = conv.kernel_size[0]
    wins = (k == 3 and conv.in_channels >= 32) or (k >= 5 and conv.out_channels < 8)
    return wins and _nnpack_setting() and _nnpack_ready()


NNPACK_STRIP_BYTES = 16 * 2**20
"""Input bytes per NNPACK call. NNPACK's FFT keeps the whole transformed input: for the
9x9 output conv at 2048x2048 that is 2.2 GB of workspace in one call, 0.4 GB in strips
of rows, which measured as fast or faster (the strips stay in cache)."""


def conv2d(x: Tensor, conv: nn.Conv2d) -> Tensor:
    """``conv(x)``, through NNPACK where :func:`uses_nnpack` says it wins; output NCHW then.

    NNPACK runs one image and one horizontal strip of rows at a time (see
    :data:`NNPACK_STRIP_BYTES`), writing into one output tensor.
    """
    if not uses_nnpack(x, conv):
        return conv(x)
    x = x.contiguous()
    weight, bias = conv.weight.contiguous(), conv.bias
    n, c_in, h_in, w_in = x.shape
    k = conv.kernel_size[0]
    h, w = h_in - k + 1, w_in - k + 1
    rows = max(16, NNPACK_STRIP_BYTES // (4 * c_in * w_in) - k + 1)
    try:
        out = torch.empty((n, conv.out_channels, h, w), dtype=x.dtype)
        for i in range(n):
            for top in range(0, h, rows):
                bottom = min(h, top + rows)
                out[i:i + 1, :, top:bottom] = torch._nnpack_spatial_convolution(
                    x[i:i + 1, :, top:bottom + k - 1], weight, bias, [0, 0], [1, 1])
        return out
    except RuntimeError:  # a shape or build NNPACK refuses: oneDNN it is, from now on
        global _NNPACK_READY
        _NNPACK_READY = False
        return conv(x)


_MALLOC_TUNED: bool | None = None


def keep_freed_memory() -> bool:
    """Make glibc keep freed large blocks for reuse instead of returning them to the OS.

    PyTorch's CPU allocator is plain ``malloc``; glibc serves every block over 32 MB
    with a fresh ``mmap``, so each large activation is page-faulted in (and zeroed by
    the kernel) again on every layer of every image. On the 2-core VM this was measured
    to take longer than the arithmetic around it (a 128 MB ``x * 2``: 112 ms fresh vs
    24 ms reused). Raising ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD`` makes the heap
    hold on to them, like CUDA's caching allocator does; the cost is that the process
    keeps its peak memory until it exits. Called on the first CPU forward; Linux/glibc
    only; ``STYLIZE_MALLOC_TUNING=0`` turns it off. Returns whether it is in effect.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED is None:
        _MALLOC_TUNED = False
        if sys.platform.startswith("linux") and os.environ.get("STYLIZE_MALLOC_TUNING", "1") != "0":
            try:
                libc = ctypes.CDLL("libc.so.6")
                m_trim_threshold, m_mmap_threshold = -1, -3
                _MALLOC_TUNED = bool(libc.mallopt(m_mmap_threshold, 1 << 30)) \
                    and bool(libc.mallopt(m_trim_threshold, (1 << 31) - 1))
            except (OSError, AttributeError):  # not glibc (musl, ...)
                _MALLOC_TUNED = False
    return _MALLOC_TUNED
