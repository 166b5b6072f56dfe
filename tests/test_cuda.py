"""Tests that need a real CUDA GPU (skipped elsewhere); ``benchmarks/gpu_check.py`` runs them.

The CPU suite simulates these paths (fake tensors, injected errors, mocks); these check
what a simulation cannot: real kernels, real allocations, a real out-of-memory error.
"""

import pytest
import torch
from conftest import make_tiny_model

from stylize.apply import memory
from stylize.runtime.device import choose_device
from stylize.errors import StylizeError
from stylize.config import ApplySettings
from stylize.apply.torch_backend import Stylizer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a.float() - b.float()).pow(2).mean().item()
    return 99.0 if mse == 0 else -10 * torch.log10(torch.tensor(mse)).item()


@pytest.fixture
def model(tmp_path):
    return make_tiny_model(tmp_path / "tiny.safetensors")


def test_auto_picks_a_working_gpu_and_rejects_a_missing_index():
    assert choose_device("auto").device.type == "cuda" and choose_device("auto").note is None
    with pytest.raises(StylizeError, match="this machine has"):
        choose_device(f"cuda:{torch.cuda.device_count()}")


@pytest.mark.parametrize("precision, bar", [("fp16", 40), ("bf16", 30), ("fp32", 60)])
def test_cuda_output_matches_the_cpu(model, precision, bar):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("no bf16 on this GPU")
    image = torch.rand(3, 200, 264)
    on_cpu = Stylizer.load(model, device="cpu")
    on_gpu = Stylizer.load(model, device="cuda", precision=precision)
    choice = on_cpu.choose("starry")[0]
    assert psnr(on_gpu.stylize(image, choice), on_cpu.stylize(image, choice)) > bar


def test_tiles_on_the_gpu_equal_the_whole_image(model):
    stylizer = Stylizer.load(model, device="cuda", precision="fp32")
    image, choice = torch.rand(3, 300, 420), stylizer.choose("wave")[0]
    whole = stylizer.stylize(image, choice, ApplySettings(tile_size=0))
    tiled = stylizer.stylize(image, choice, ApplySettings(tile_size=160, stats_size=0))
    assert psnr(tiled, whole) > 60


def test_a_real_out_of_memory_error_is_recovered_from():
    """With this process capped to 1 GiB, a 4096 px johnson pass cannot fit whole; tiles must."""
    from stylize.config import NetConfig
    from stylize.model.network import StyleNet

    torch.manual_seed(0)
    stylizer = Stylizer(StyleNet(NetConfig(n_styles=1)).eval(), ["only"], device=torch.device("cuda"))
    free, total = torch.cuda.mem_get_info()
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(2**30 / total)
    try:
        image = torch.rand(3, 4096, 4096)
        out = stylizer.stylize(image, stylizer.choose(None)[0], ApplySettings(tile_size=4096))
        assert out.shape == image.shape and torch.isfinite(out).all()
        assert stylizer.tile_cap is not None and stylizer.tile_cap < 4096
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()


def test_peak_memory_of_a_pass_is_within_the_planned_headroom():
    """The tile plan assumes a pass needs at most SAFETY x the layout estimate; measure it."""
    from stylize.config import NetConfig
    from stylize.model.network import StyleNet

    stylizer = Stylizer(StyleNet(NetConfig(n_styles=1)).eval(), ["only"], device=torch.device("cuda"))
    image, choice = torch.rand(3, 1024, 1024), stylizer.choose(None)[0]
    stylizer.stylize(image, choice, ApplySettings(tile_size=0))
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    stylizer.stylize(image, choice, ApplySettings(tile_size=0))
    peak = torch.cuda.max_memory_allocated() - base
    assert peak <= memory.SAFETY * memory.pass_bytes_per_pixel(stylizer.net.config, 2) * 1024 * 1024


def test_a_training_step_on_the_gpu(tmp_path, style_dir, photo_dir):
    from stylize.train.loop import TrainSettings, train

    settings = TrainSettings(steps=3, batch_size=2, image_size=64, style_size=64, workers=1, preset="small",
                             checkpoint_every=10, preview_every=10)
    result = train(style_dir, photo_dir, tmp_path / "m.safetensors", settings, device="cuda")
    assert result.step == 3 and all(torch.isfinite(torch.tensor(v)) for v in result.losses.values())
