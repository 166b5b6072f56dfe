"""Mixed precision without a GPU: CPU autocast runs the same code paths as CUDA autocast.

What the docstrings promise (Gram matrices, gamma/beta and norm statistics in fp32)
must hold under autocast, where a matmul runs in half precision whatever its inputs.
"""

import math

import pytest
import torch
from torch import nn

from stylize.train.loss import PerceptualLoss, gram
from stylize.config import NetConfig
from stylize.model.network import StyleNet
from stylize.model.norm import ConditionalInstanceNorm2d


class TinyFeatures(nn.Module):
    """A stand-in for VGG16 with its interface: four ReLU taps, the first ``taps`` returned."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layers = nn.ModuleList([nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, stride=2, padding=1),
                                     nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.Conv2d(16, 16, 3, padding=1)])
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor, taps: int = 4) -> list[torch.Tensor]:
        out = []
        for layer in self.layers[:taps]:
            x = torch.relu(layer(x))
            out.append(x)
        return out


def test_gram_is_computed_in_fp32_under_autocast():
    features = torch.randn(2, 16, 24, 24) * 30
    exact = gram(features)
    for dtype in (torch.bfloat16, torch.float16):
        with torch.autocast("cpu", dtype=dtype):
            under = gram(features)
            from_half = gram(features.to(dtype))
        assert under.dtype == torch.float32 and torch.equal(under, exact)
        assert from_half.dtype == torch.float32  # half features are widened, not multiplied in half


def test_style_gamma_and_beta_are_fp32_under_autocast():
    norm = ConditionalInstanceNorm2d(32, 5)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    mix = torch.softmax(torch.randn(3, 5), 1)
    exact = norm.affine(mix)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gamma, beta = norm.affine(mix)
    assert gamma.dtype == beta.dtype == torch.float32
    assert torch.equal(gamma, exact[0]) and torch.equal(beta, exact[1])


def test_a_mixed_precision_training_step_on_the_cpu():
    """One step as train.fit takes it under autocast: half activations, fp32 losses and gradients."""
    torch.manual_seed(0)
    net = StyleNet(NetConfig(channels=(8, 16, 32), n_residual=1, n_styles=2)).train()
    features = TinyFeatures()
    loss_fn = PerceptualLoss(features, [torch.rand(3, 40, 40), torch.rand(3, 32, 48)])
    images, styles = torch.rand(2, 3, 32, 32), torch.tensor([0, 1])
    seen = []
    hook = features.layers[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = net(images, styles)
        terms = loss_fn(output.float(), images, styles)
    hook.remove()
    terms["total"].backward()
    assert seen and all(dtype == torch.bfloat16 for dtype in seen)  # the loss network ran in half
    assert all(t.dtype == torch.float32 and torch.isfinite(t) for t in terms.values())
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
    with torch.no_grad():  # close to the fp32 step: half precision changes the loss by well under 5%
        reference = loss_fn(net(images, styles), images, styles)["total"]
    assert abs(terms["total"].item() / reference.item() - 1) < 0.05


def _train_recording_autocast(monkeypatch, tmp_path, style_dir, photo_dir, precision="auto"):
    """Run train() for 2 steps on the CPU; returns the (enabled, dtype) autocast state each loss call saw."""
    from stylize.train import loss as loss_mod
    from stylize.train.loop import TrainSettings, train

    seen = []
    real_forward = loss_mod.PerceptualLoss.forward

    def forward(self, output, photo, style, per_sample=False):
        seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        return real_forward(self, output, photo, style, per_sample)

    monkeypatch.setattr(loss_mod.PerceptualLoss, "forward", forward)
    settings = TrainSettings(steps=2, batch_size=2, image_size=32, style_size=32, workers=0, preset="small",
                             precision=precision)
    result = train(style_dir, photo_dir, tmp_path / "m.safetensors", settings, device="cpu")
    assert result.step == 2 and all(math.isfinite(v) for v in result.losses.values())
    return seen


@pytest.mark.parametrize("native, expected", [(True, (True, torch.bfloat16)), (False, (False, None))])
def test_auto_trains_in_bf16_on_cpus_with_native_bf16_only(monkeypatch, tmp_path, style_dir, photo_dir, native,
                                                           expected):
    from stylize.runtime import precision

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    seen = _train_recording_autocast(monkeypatch, tmp_path, style_dir, photo_dir)
    assert len(seen) == 2 and all(enabled == expected[0] for enabled, _ in seen)
    if expected[0]:
        assert all(dtype == expected[1] for _, dtype in seen)


def test_the_fp16_and_gradient_scaler_step_of_older_gpus_runs_on_the_cpu(monkeypatch, tmp_path, style_dir,
                                                                         photo_dir):
    """What auto picks on a pre-Ampere GPU (fp16 autocast + GradScaler), driven through fit() on the CPU."""
    from stylize.runtime import precision
    from stylize.train import loop as train_mod

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    on_gpu = precision.training_precision("auto", torch.device("cuda", 0))
    assert (on_gpu.name, on_gpu.dtype, on_gpu.scale_gradients) == ("fp16", torch.float16, True)
    scalers = []
    real_scaler = precision.Precision.grad_scaler

    def grad_scaler(self, device):
        scalers.append(real_scaler(self, device))
        return scalers[-1]

    monkeypatch.setattr(precision.Precision, "grad_scaler", grad_scaler)
    monkeypatch.setattr(train_mod, "training_precision", lambda name, device: on_gpu)
    seen = _train_recording_autocast(monkeypatch, tmp_path, style_dir, photo_dir)
    assert seen == [(True, torch.float16)] * 2
    assert len(scalers) == 1 and scalers[0].is_enabled() and scalers[0].get_scale() > 0
