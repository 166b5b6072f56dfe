"""The style network: shapes, invariances, styles, presets."""

import pytest
import torch

from stylize.errors import StylizeError
from stylize.config import PRESETS, NetConfig
from stylize.model.network import StyleNet


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    net = StyleNet(NetConfig(channels=(8, 16, 32), n_residual=2, n_styles=3)).eval()
    with torch.no_grad():  # distinct styles, as after training
        for p in net.parameters():
            if p.ndim == 2:
                p.add_(torch.randn_like(p) * 0.5)
    return net


@pytest.mark.parametrize("size", [(32, 32), (33, 47), (8, 8), (61, 9)])
def test_any_size_gives_same_size(net, size):
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        y = net(x, torch.tensor([0, 2]))
    assert y.shape == x.shape
    assert 0 <= y.min() and y.max() <= 1


def test_too_small_is_a_clear_error(net):
    with pytest.raises(StylizeError, match="at least 8 px"):
        net(torch.rand(1, 3, 7, 30), 0)


def test_nearly_invariant_to_affine_input_change(net):
    """First conv is linear, then IN removes per-channel scale and offset: f(a*x + c) ~ f(x) for a > 0.

    The conv's bias and the reflection padding keep the constant c a constant shift of every
    feature map, which IN subtracts; a > 0 scales the map, which IN divides out (up to eps).
    """
    torch.manual_seed(1)
    x = torch.rand(1, 3, 40, 40)
    with torch.no_grad():
        ref = net(x, 1)
        for a, c in [(0.5, 0.2), (2.0, -0.7), (10.0, 3.0)]:
            assert (net(a * x + c, 1) - ref).abs().max() < 2e-3, (a, c)
        flipped = net(-x, 1)
    assert (flipped - ref).abs().max() > 0.05  # a < 0 is not an invariance (ReLU breaks the symmetry)


def test_styles_differ_and_batch_does_not_leak(net):
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        alone = net(x, 0)
        in_batch = net(torch.cat([x, torch.rand(1, 3, 24, 24) * 5]), torch.tensor([0, 1]))[:1]
        other = net(x, 2)
    assert torch.allclose(alone, in_batch, atol=1e-5)
    assert (alone - other).abs().mean() > 1e-3


def test_index_and_one_hot_agree(net):
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(net(x, torch.tensor([1, 1])), net(x, torch.tensor([0.0, 1.0, 0.0])), atol=1e-6)


def test_johnson_layout():
    net = StyleNet(PRESETS["johnson"])
    assert net.down[0].conv.kernel_size == (9, 9) and net.down[0].conv.out_channels == 32
    assert [layer.conv.stride for layer in net.down[1:]] == [(2, 2), (2, 2)]
    assert len(net.res) == 5 and all(b.a.conv.in_channels == 128 for b in net.res)
    assert all(layer.upsample for layer in net.up)
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in net.modules())
    assert net.out_conv.kernel_size == (9, 9) and net.out_conv.out_channels == 3
    small = StyleNet(PRESETS["small"])
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in net.parameters()) / 3


def test_fast_layout_has_no_full_resolution_feature_map():
    """The ``fast`` preset: separable convolutions, pixel shuffle, first and last convolution at half size."""
    net = StyleNet(NetConfig(**{**PRESETS["fast"].to_dict(), "n_styles": 2})).eval()
    seen = {}
    hooks = [m.register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, o.shape))
             for name, m in net.named_modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        y = net(torch.rand(1, 3, 64, 48), 1)
    for hook in hooks:
        hook.remove()
    assert y.shape == (1, 3, 64, 48)
    assert max(shape[-2] for shape in seen.values()) == 32  # half of 64: no conv output at full size
    assert seen["out_conv"] == (1, 12, 32, 24)  # 2x2 RGB blocks, pixel-shuffled
    depthwise = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert depthwise and all(m.groups == m.in_channels for m in depthwise)
    # every convolution but the first and the last is separable; conditional norms stay after each
    assert len(depthwise) == 2 + 2 * len(net.res) + 2
    norms = [m for m in net.modules() if m.__class__.__name__ == "ConditionalInstanceNorm2d"]
    assert len(norms) == 3 + 2 * len(net.res) + 2 and all(n.weight.shape[0] == 2 for n in norms)
    small = StyleNet(PRESETS["small"])
    assert sum(p.numel() for p in net.parameters()) < sum(p.numel() for p in small.parameters()) / 3


def test_config_of_an_older_checkpoint_gets_the_papers_layers():
    old = {"channels": [8, 16, 32], "n_residual": 1, "n_styles": 2}  # written before the layer kinds existed
    config = NetConfig.from_dict(old)
    assert config == NetConfig(channels=(8, 16, 32), n_residual=1, n_styles=2)
    assert not config.separable and config.upsample == "nearest" and config.outer_kernel == 9 and config.full_res
    assert NetConfig.from_dict(PRESETS["fast"].to_dict()) == PRESETS["fast"]


def test_unknown_layer_kinds_are_refused():
    with pytest.raises(StylizeError, match="upsample"):
        StyleNet(NetConfig(channels=(8, 16, 32), n_residual=1, upsample="bilinear"))
