"""The CUDA inference path, run on fake CUDA tensors: shapes and dtypes, no values, no GPU.

``FakeTensorMode`` gives tensors a device and a dtype but no storage, so the network runs
its CUDA code path (autocast included: its availability check is patched) on any
machine. What it checks: half precision really reaches the convolutions, the norm
statistics stay fp32, the output comes back as fp32 on the CPU, and tiling (with the
tile chosen from the free memory) covers the image with tiles of the right size.
"""

from contextlib import contextmanager

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode

from stylize.apply import torch_backend as inference, memory
from stylize.errors import StylizeError
from stylize.config import ApplySettings
from stylize.apply.tiling import tile_margin, tile_spans
from stylize.apply.torch_backend import Stylizer
from stylize.config import NetConfig
from stylize.model.network import StyleNet
from stylize.model.norm import NormStats
from stylize.runtime.precision import HALF_DTYPES
from stylize.runtime.process import EngineOptions
from stylize.runtime.variants import parse_fast_path


class Recorder(TorchDispatchMode):
    """Notes the input dtype and size of every convolution."""

    def __init__(self) -> None:
        super().__init__()
        self.convs: list[tuple[torch.dtype, torch.device, tuple[int, ...]]] = []
        self.layouts: list[tuple[bool, tuple[int, ...], bool]] = []
        """Per convolution: channels-last input, weight shape, cuDNN autotuning on."""
        self.ops: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.add(func.__name__.split(".")[0])
        if "conv" in func.__name__:
            self.convs.append((args[0].dtype, args[0].device, tuple(args[0].shape)))
            self.layouts.append((args[0].is_contiguous(memory_format=torch.channels_last), tuple(args[1].shape),
                                 torch.backends.cudnn.benchmark))
        return func(*args, **(kwargs or {}))


@pytest.fixture
def fake_cuda(monkeypatch):
    """Fake CUDA tensors, CUDA autocast enabled, ``free`` bytes of GPU memory; yields a recorder."""
    monkeypatch.setattr(torch.cuda.amp.common, "amp_definitely_not_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)  # autocast asks
    monkeypatch.setattr(inference, "all_finite", lambda x: True)  # fake tensors hold no values to check
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 0)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 0)
    stats_dtypes = []
    real_record = NormStats.record
    monkeypatch.setattr(NormStats, "record", lambda self, mean, var: (stats_dtypes.append((mean.dtype, var.dtype)),
                                                                      real_record(self, mean, var))[1])

    def set_free(free: int) -> None:
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free, 16 * 2**30))

    recorder = Recorder()

    @contextmanager
    def fake_mode():  # entered after the real network is built: .to("cuda") then makes fake parameters
        with FakeTensorMode(allow_non_fake_inputs=True), recorder:
            yield

    return recorder, set_free, stats_dtypes, fake_mode


def fresh_net() -> StyleNet:
    torch.manual_seed(0)
    return StyleNet(NetConfig(channels=(8, 16, 32), n_residual=1, n_styles=3)).eval()


@pytest.mark.parametrize("precision, dtype", [("auto", torch.float16), ("fp16", torch.float16),
                                              ("bf16", torch.bfloat16), ("fp32", torch.float32)])
def test_cuda_inference_runs_in_the_chosen_precision(fake_cuda, precision, dtype):
    recorder, set_free, stats_dtypes, fake_mode = fake_cuda
    set_free(8 * 2**30)
    net = fresh_net()
    with fake_mode():
        stylizer = Stylizer(net, ["a", "b", "c"], device=torch.device("cuda"), precision=precision)
        out = stylizer.stylize(torch.rand(3, 120, 200), stylizer.choose("b")[0])
    assert out.shape == (3, 120, 200) and out.dtype == torch.float32 and out.device.type == "cpu"
    assert len(recorder.convs) >= 8
    assert all(d == dtype and dev.type == "cuda" and shape[0] == 1 for d, dev, shape in recorder.convs)
    assert stats_dtypes == []  # untiled: nothing recorded


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_tiles_follow_the_free_memory(fake_cuda, dtype):
    recorder, set_free, stats_dtypes, fake_mode = fake_cuda
    net = fresh_net()
    per_pixel = memory.pass_bytes_per_pixel(net.config, 2)
    tile = 160
    set_free(int(tile**2 * per_pixel * memory.SAFETY / memory.USABLE_FRACTION) + 1000)
    height, width = 300, 410
    with fake_mode():
        stylizer = Stylizer(net, ["a", "b", "c"], device=torch.device("cuda"),
                            precision="fp16" if dtype == torch.float16 else "bf16")
        assert stylizer.tile_size_for(ApplySettings()) == tile
        out = stylizer.stylize(torch.rand(3, height, width), stylizer.choose("a:0.5,c:0.5")[0])
    assert out.shape == (3, height, width) and out.dtype == torch.float32
    first_layer = [shape for d, dev, shape in recorder.convs if shape[1] == 3]  # the 9x9 input conv of each pass
    assert all(d == dtype for d, dev, shape in recorder.convs)
    assert first_layer[0][-1] == tile + 8 and first_layer[0][-2] < tile  # statistics on the image at tile size
    margin = tile_margin(net.config)
    rows, columns = (len(tile_spans(n, tile, margin)) for n in (height, width))
    assert (rows, columns) == (3, 4) and len(first_layer) == 1 + rows * columns
    # A last tile may be 3 px longer (aligned start); the network pads to a multiple of 4, then 4 px a side.
    assert all(max(shape[-2:]) <= tile + 4 + 8 for shape in first_layer)
    assert stats_dtypes and all(pair == (torch.float32, torch.float32) for pair in stats_dtypes)


def test_bf16_on_a_gpu_without_it_is_a_one_line_error(fake_cuda, monkeypatch):
    """Pre-Ampere cards (T4, V100): autocast would raise a RuntimeError deep in the first pass."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla V100-SXM2-16GB")
    net = fresh_net()
    message = r"^--precision bf16: this GPU \(Tesla V100-SXM2-16GB\) has no native bf16"
    with fake_cuda[3](), pytest.raises(StylizeError, match=message):
        Stylizer(net, ["a", "b", "c"], device=torch.device("cuda"), precision="bf16")


@pytest.mark.parametrize("spec", ["fp16+cl+bench+pad8", "bf16+gn", "fp16+gn+bench+pad8"])
def test_cuda_fast_paths_reach_the_kernels(fake_cuda, spec):
    """What each eager CUDA fast path changes is what the convolutions and norms receive.

    (Not ``cl+gn``: CUDA's group norm makes its input NCHW, so the layout would flip at every norm.)"""
    recorder, set_free, stats_dtypes, fake_mode = fake_cuda
    set_free(8 * 2**30)
    path = parse_fast_path(spec)
    before = torch.backends.cudnn.benchmark
    net = fresh_net()
    with fake_mode():
        stylizer = Stylizer(net, ["a", "b", "c"], device=torch.device("cuda"),
                            engine=EngineOptions(fast_path=spec))
        out = stylizer.stylize(torch.rand(3, 120, 200), stylizer.choose("b")[0])
    assert out.shape == (3, 120, 200) and out.dtype == torch.float32
    assert {dtype for dtype, _, _ in recorder.convs} == {HALF_DTYPES[path.precision]}
    channels_last, weights, autotuned = zip(*recorder.layouts)
    assert all(channels_last) if path.channels_last else not any(channels_last)
    assert set(autotuned) == {path.cudnn_benchmark} and torch.backends.cudnn.benchmark == before
    padded = all(shape[0] % 8 == 0 and shape[1] % 8 == 0 for shape in weights)
    assert padded == path.pad_channels
    assert ("group_norm" in recorder.ops) == (path.norm == "group")
    assert ("native_batch_norm" in recorder.ops) == (path.norm == "batch")
