"""The properties of instance normalization claimed in the seed article, each tested."""

import torch
import torch.nn.functional as F

from stylize.model.norm import ConditionalInstanceNorm2d, NormStats, instance_norm, shared_stats


def test_zero_mean_unit_variance_per_sample_and_channel():
    torch.manual_seed(0)
    x = torch.randn(4, 5, 17, 23) * torch.rand(4, 5, 1, 1) * 10 + torch.randn(4, 5, 1, 1) * 7
    y = instance_norm(x)
    mean = y.mean(dim=(2, 3))
    var = y.var(dim=(2, 3), unbiased=False)
    assert torch.allclose(mean, torch.zeros_like(mean), atol=1e-5)
    assert torch.allclose(var, torch.ones_like(var), atol=1e-3)


def test_invariant_to_positive_scaling_up_to_eps():
    x = torch.randn(2, 3, 16, 16)
    for a in (0.5, 3.0, 100.0):
        assert torch.allclose(instance_norm(a * x), instance_norm(x), atol=1e-4)


def test_scaling_invariance_breaks_only_through_eps():
    """For a tiny scale the eps term dominates: the claim is 'up to eps', and eps is what breaks it."""
    x = torch.randn(1, 1, 16, 16)
    tiny = instance_norm(1e-5 * x)
    assert tiny.abs().max() < 0.05
    assert torch.allclose(instance_norm(1e-5 * x, eps=0.0), instance_norm(x, eps=0.0), atol=1e-3)


def test_constant_map_gives_zeros():
    x = torch.full((3, 4, 9, 9), 42.0)
    assert torch.equal(instance_norm(x), torch.zeros_like(x))


def test_sample_output_independent_of_rest_of_batch():
    a = torch.randn(1, 3, 12, 12)
    batch1 = torch.cat([a, torch.randn(3, 3, 12, 12)])
    batch2 = torch.cat([torch.randn(2, 3, 12, 12) * 50, a])
    assert torch.allclose(instance_norm(batch1)[0], instance_norm(a)[0], atol=1e-6)
    assert torch.allclose(instance_norm(batch2)[2], instance_norm(a)[0], atol=1e-6)


def test_matches_torch_instance_norm():
    x = torch.randn(2, 6, 10, 14)
    assert torch.allclose(instance_norm(x), F.instance_norm(x, eps=1e-5), atol=1e-5)


def test_statistics_in_fp32_under_bfloat16():
    """A bf16 input keeps its dtype, but its statistics are those of the fp32 computation."""
    x = (torch.randn(1, 2, 64, 64) * 8 + 300).bfloat16()
    y = instance_norm(x)
    assert y.dtype == torch.bfloat16
    reference = instance_norm(x.float())
    assert torch.allclose(y.float(), reference, atol=0.02)


def _cin(n_styles=3, channels=4):
    norm = ConditionalInstanceNorm2d(channels, n_styles)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(n_styles, channels))
        norm.bias.copy_(torch.randn(n_styles, channels))
    return norm


def test_conditional_norm_applies_each_samples_style():
    norm = _cin()
    x = torch.randn(3, 4, 8, 8)
    y = norm(x, F.one_hot(torch.tensor([2, 0, 1]), 3).float())
    for i, s in enumerate([2, 0, 1]):
        expected = instance_norm(x[i:i + 1]) * norm.weight[s, :, None, None] + norm.bias[s, :, None, None]
        assert torch.allclose(y[i:i + 1], expected, atol=1e-5)


def test_mixing_with_one_hot_equals_that_style_and_blends_linearly():
    norm = _cin()
    x = torch.randn(1, 4, 8, 8)
    one_hot = torch.tensor([[0.0, 1.0, 0.0]])
    plain = norm(x, F.one_hot(torch.tensor([1]), 3).float())
    assert torch.equal(norm(x, one_hot), plain)
    half = norm(x, torch.tensor([[0.5, 0.5, 0.0]]))
    a = norm(x, torch.tensor([[1.0, 0.0, 0.0]]))
    assert torch.allclose(half, (a + plain) / 2, atol=1e-5)


def test_recorded_statistics_replay_in_order():
    norm = _cin()
    style = torch.tensor([[1.0, 0.0, 0.0]])
    whole = torch.randn(1, 4, 16, 16)
    stats = NormStats()
    with shared_stats(norm, stats):
        full = norm(whole, style)
        stats.replay()
        left = norm(whole[..., :8], style)
    assert torch.allclose(left, full[..., :8], atol=1e-5)
    assert norm.stats is None
