"""The contract between the network and the speed engine: same function, computed faster.

:class:`stylize.model.engine.FastStyleNet` folds norm + affine + ReLU into one batch-norm call,
replaces "upsample, pad, 3x3 conv" by four 2x2 kernels on the small input, runs
channels-last and NNPACK on CPUs and splits the last 9x9 conv into rows. None of that may
change the picture: the bar is 40 dB PSNR against the textbook :meth:`StyleNet.forward`;
in fp32 they agree to float rounding (>90 dB), which is what is asserted where it holds.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from stylize.model.engine import FastStyleNet, conv_by_rows, pad2d, subpixel_kernels, upsample_conv
from stylize.config import PRESETS, NetConfig
from stylize.model.network import StyleNet
from stylize.model.norm import (
    ConditionalInstanceNorm2d,
    NormStats,
    conditional_instance_norm,
    instance_norm,
    shared_stats,
)
from stylize.runtime.process import EngineOptions


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a.float() - b.float()).pow(2).mean().item()
    return float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(1.0 / mse)).item()


def styled_net(config: NetConfig, seed: int = 0) -> StyleNet:
    """An untrained network whose styles differ, as after training (norm rows perturbed)."""
    torch.manual_seed(seed)
    net = StyleNet(config).eval()
    with torch.no_grad():
        for norm in net.modules():
            if isinstance(norm, ConditionalInstanceNorm2d):
                norm.weight.add_(torch.randn_like(norm.weight) * 0.5)
                norm.bias.add_(torch.randn_like(norm.bias) * 0.5)
    return net


TINY = dict(channels=(8, 16, 32), n_residual=2, n_styles=3)


@pytest.fixture(scope="module", params=[NetConfig(**TINY), dataclasses.replace(PRESETS["fast"], **TINY)],
                ids=["johnson-layers", "fast-layers"])
def net(request):
    """The paper's layers, and the ``fast`` preset's (separable, pixel shuffle, half-resolution ends), tiny."""
    return styled_net(request.param)


@pytest.mark.parametrize("size", [(64, 64), (37, 50), (8, 8)])
@pytest.mark.parametrize("grad", [False, True])
def test_fast_forward_matches_reference(net, size, grad):
    x = torch.rand(2, 3, *size)
    style = torch.tensor([0, 2])
    with torch.set_grad_enabled(grad):
        fast = FastStyleNet(net)(x, style)
        ref = net(x, style)
    assert fast.shape == ref.shape == x.shape
    assert fast.is_contiguous()
    assert psnr(fast, ref) > 90


def test_johnson_preset_fidelity_at_256():
    """The full-size network, mixed styles, batch of 2: well above the 40 dB bar."""
    net = styled_net(NetConfig(n_styles=2))  # the johnson preset
    x = torch.rand(2, 3, 256, 256)
    style = torch.tensor([[1.0, 0.0], [0.3, 0.7]])
    with torch.inference_mode():
        fast = FastStyleNet(net)(x, style)
        ref = net(x, style)
    assert psnr(fast, ref) > 90


def test_gradients_match_reference(net):
    """Training goes through the fast form: its parameter gradients are the reference's."""
    x = torch.rand(2, 3, 32, 32)
    style = torch.tensor([1, 0])
    grads = []
    for forward in (FastStyleNet(net), net):
        net.zero_grad()
        forward(x, style).square().mean().backward()
        grads.append({k: p.grad.clone() for k, p in net.named_parameters()})
    net.zero_grad()
    for name, g in grads[0].items():
        assert torch.allclose(g, grads[1][name], rtol=1e-3, atol=1e-6), name


@pytest.mark.parametrize("options", [EngineOptions(channels_last=True), EngineOptions(channels_last=False),
                                     EngineOptions(nnpack=False), EngineOptions(channels_last=True, nnpack=False)])
def test_every_engine_path_matches_reference(net, options):
    x = torch.rand(3, 3, 40, 48)
    style = torch.tensor([2, 1, 0])
    with torch.inference_mode():
        assert psnr(FastStyleNet(net, options)(x, style), net(x, style)) > 90


def test_nnpack_path_on_a_wide_network_matches_reference():
    """NNPACK takes the 3x3 convolutions with >= 32 input channels: the johnson widths' residual blocks."""
    net = styled_net(NetConfig(channels=(32, 32, 32), n_residual=1, n_styles=1))
    x = torch.rand(1, 3, 64, 72)
    with torch.inference_mode():
        assert psnr(FastStyleNet(net)(x, 0), net(x, 0)) > 90


def test_engine_options_from_environment():
    assert EngineOptions.from_env({}) == EngineOptions()
    assert EngineOptions.from_env({"STYLIZE_CHANNELS_LAST": "1", "STYLIZE_NNPACK": "0"}) \
        == EngineOptions(channels_last=True, nnpack=False)
    assert EngineOptions.from_env({"STYLIZE_CHANNELS_LAST": "off"}).channels_last is False
    assert EngineOptions.from_env({"STYLIZE_CHANNELS_LAST": "auto"}).channels_last is None


def test_fast_net_follows_the_wrapped_network(net):
    fast = FastStyleNet(net)
    assert not fast.training and fast.net is net
    assert all(a is b for a, b in zip(fast.parameters(), net.parameters(), strict=True))


def test_subpixel_upsample_conv_is_exact():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(5, 7, 3)
    x = torch.randn(2, 5, 6, 9)
    with torch.no_grad():
        ref = conv(F.pad(F.interpolate(x, scale_factor=2, mode="nearest"), (1, 1, 1, 1), mode="reflect"))
        assert torch.allclose(upsample_conv(x, conv), ref, atol=1e-5)
        cl = upsample_conv(x.contiguous(memory_format=torch.channels_last), conv)
        assert cl.is_contiguous(memory_format=torch.channels_last)
        assert torch.allclose(cl, ref, atol=1e-5)
    assert subpixel_kernels(conv.weight).shape == (28, 5, 2, 2)


@pytest.mark.parametrize("mode", ["reflect", "replicate"])
@pytest.mark.parametrize("p", [1, 4])
def test_channels_last_pad_is_exact_and_keeps_layout(mode, p):
    x = torch.randn(2, 5, 9, 12)
    cl = x.contiguous(memory_format=torch.channels_last)
    out = pad2d(cl, p, mode)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out, F.pad(x, (p, p, p, p), mode=mode))
    assert torch.equal(pad2d(x, p, mode), F.pad(x, (p, p, p, p), mode=mode))


def test_conv_by_rows_is_exact():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(6, 3, 9)
    x = torch.randn(2, 6, 20, 17)
    with torch.no_grad():
        assert torch.allclose(conv_by_rows(x, conv), conv(x), atol=1e-4)
        cl = x.contiguous(memory_format=torch.channels_last)
        assert torch.allclose(conv_by_rows(cl, conv), conv(x), atol=1e-4)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_fused_norm_matches_formula(layout):
    x = (torch.randn(3, 4, 9, 11) * 5 + 20).contiguous(memory_format=layout)
    gamma, beta = torch.randn(3, 4), torch.randn(3, 4)
    expected = instance_norm(x) * gamma[:, :, None, None] + beta[:, :, None, None]
    assert torch.allclose(conditional_instance_norm(x, gamma, beta), expected, atol=1e-4)
    assert torch.allclose(conditional_instance_norm(x, gamma, beta, relu=True), expected.relu(), atol=1e-4)


def test_fused_norm_records_and_replays_like_moments():
    x = torch.randn(2, 4, 16, 16) * 3 + 1
    gamma, beta = torch.randn(2, 4), torch.randn(2, 4)
    stats = NormStats()
    full = conditional_instance_norm(x, gamma, beta, stats)
    (mean, var), = stats.pairs
    ref_var, ref_mean = torch.var_mean(x, dim=(2, 3), keepdim=True, unbiased=False)
    assert mean.shape == var.shape == (2, 4, 1, 1)
    assert torch.allclose(mean, ref_mean, atol=1e-5) and torch.allclose(var, ref_var, rtol=1e-4)
    stats.replay()
    left = conditional_instance_norm(x[..., :8].contiguous(memory_format=torch.channels_last), gamma, beta, stats)
    assert torch.allclose(left, full[..., :8], atol=1e-5)


def test_shared_stats_through_the_fast_network(net):
    """Tiling's contract: statistics recorded on the whole image reproduce it on a crop."""
    x = torch.rand(1, 3, 64, 96)
    stats = NormStats()
    fast = FastStyleNet(net)
    with torch.inference_mode(), shared_stats(net, stats):
        whole = fast(x, 1)
        stats.replay()
        crop = fast(x[..., :, :72], 1)
    assert len(stats.pairs) == 3 + 2 * 2 + 2
    keep = 72 - 36  # the receptive-field radius of this 2-block network is under 36 px
    assert torch.allclose(crop[..., :keep], whole[..., :keep], atol=1e-5)


def test_bfloat16_autocast_on_cpu_stays_close(net):
    """Half precision is not the fast path's default; under CPU autocast it still works."""
    x = torch.rand(1, 3, 48, 48)
    with torch.inference_mode():
        ref = net(x, 0)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = FastStyleNet(net)(x, 0).float()
    assert torch.isfinite(out).all()
    assert psnr(out, ref) > 25


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
@pytest.mark.parametrize("dtype", [None, torch.float16, torch.bfloat16])
def test_cuda_fast_forward_fidelity(dtype):
    """On a GPU: fp32 agrees to rounding; half precision stays above the 40 dB bar."""
    net = styled_net(NetConfig(n_styles=2)).cuda()
    x = torch.rand(2, 3, 256, 256, device="cuda")
    style = torch.tensor([0, 1], device="cuda")
    with torch.inference_mode():
        ref = net(x, style).float()
        with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
            out = FastStyleNet(net)(x, style).float()
    assert psnr(out, ref) > (60 if dtype is None else 40)
