"""Fast paths (:mod:`stylize.runtime.variants`): each one renders what the plain fp32 engine renders.

Every path that runs on a CPU is compared here with the eager fp32 output, on a batch of two
images with different styles and a size that needs padding: fp32 paths to float rounding,
half precision to the bars of ``tests/test_speed_paths.py``. CUDA graphs need a GPU; their
bookkeeping (a graph per shape and autocast state, static buffers, cloned outputs, the cap)
is tested on the CPU through a stand-in for the capture. The compiled paths (``compile``,
``compile-ro``, ``cnorm``) are checked here on the CPU only (compiling takes minutes); on a GPU,
``benchmarks/gpu_variants.py`` measures every path's difference from eager fp32 as it times it.
"""

from __future__ import annotations

import pytest
import torch

from stylize import Stylizer
from stylize.apply import fast
from stylize.apply.fast import Captured, GraphRunner, cudnn_autotuned
from stylize.config import CUDA_FAST_PATH, NetConfig, ApplySettings
from stylize.errors import StylizeError
from stylize.model.engine import padded_conv
from stylize.model.styles import StyleChoice
from stylize.runtime.process import EngineOptions
from stylize.runtime.variants import FastPath, parse_fast_path, resolve_fast_path
from test_speed_paths import TINY, psnr, styled_net

CPU_PATHS = {  # spec: PSNR bar against eager fp32 (inf: max difference 1e-4)
    "fp32+cl": float("inf"), "fp32+gn": float("inf"), "fp32+cl+gn": float("inf"), "fp32+cnorm": float("inf"),
    "fp32+bench": float("inf"), "fp16": 40, "fp16+cl+gn": 40, "bf16+cl": 25, "bf16+gn": 25,
}
COMPILED = ["fp32+compile", "fp32+cl+compile-ro"]


@pytest.fixture(scope="module")
def net():
    return styled_net(NetConfig(**TINY))


@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(0)
    weights = torch.tensor([[1.0, 0, 0], [0.2, 0.3, 0.5]])  # one style, and a mix: per-image affine
    return torch.rand(2, 3, 37, 50), weights


def render(net, spec: str, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    stylizer = Stylizer(net, ["a", "b", "c"], device="cpu", engine=EngineOptions(fast_path=spec))
    return stylizer._forward(x, weights)


@pytest.fixture(scope="module")
def reference(net, batch):
    return render(net, "fp32", *batch)


def check_close(out: torch.Tensor, ref: torch.Tensor, bar: float) -> None:
    assert out.shape == ref.shape and out.dtype == torch.float32 and torch.isfinite(out).all()
    if bar == float("inf"):
        assert (out - ref).abs().max().item() < 1e-4
    else:
        assert psnr(out, ref) > bar


@pytest.mark.parametrize("spec", CPU_PATHS)
def test_each_cpu_fast_path_renders_what_eager_fp32_renders(net, batch, reference, spec):
    check_close(render(net, spec, *batch), reference, CPU_PATHS[spec])


@pytest.mark.parametrize("spec", COMPILED)
def test_compiled_paths_render_what_eager_fp32_renders(net, batch, reference, spec):
    check_close(render(net, spec, *batch), reference, float("inf"))


def test_tiled_passes_share_statistics_whatever_the_norm_kernel(net):
    """Recording and replaying statistics goes through the eager batch-norm path, so tiles still match."""
    torch.manual_seed(1)
    rgb = torch.rand(3, 300, 260)
    choice = StyleChoice(label="b", weights=(0.0, 1.0, 0.0))
    plain = Stylizer(net, ["a", "b", "c"], device="cpu", engine=EngineOptions(fast_path="fp32"))
    group = Stylizer(net, ["a", "b", "c"], device="cpu", engine=EngineOptions(fast_path="fp32+gn"))
    whole = plain.stylize(rgb, choice, ApplySettings(tile_size=0, work_size=0))
    tiled = group.stylize(rgb, choice, ApplySettings(tile_size=160, stats_size=0, work_size=0))
    assert (tiled - whole).abs().max().item() < 1e-4


@pytest.mark.parametrize("c_in, c_out, kernel", [(3, 32, 9), (32, 3, 9), (16, 8, 3), (5, 12, 1)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_a_convolution_padded_to_eight_channels_is_the_convolution(c_in, c_out, kernel, channels_last):
    """pad8 runs on CUDA only; the arithmetic it does is checked here."""
    torch.manual_seed(2)
    conv = torch.nn.Conv2d(c_in, c_out, kernel)
    x = torch.rand(2, c_in, 20, 17)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        out = padded_conv(x, conv)
        assert out.shape == (2, c_out, 20 - kernel + 1, 17 - kernel + 1)
        assert (out - conv(x)).abs().max().item() < 1e-5


def test_auto_takes_the_configured_cuda_path_on_cuda_and_fp32_elsewhere():
    assert resolve_fast_path("auto", "cuda") == parse_fast_path(CUDA_FAST_PATH)
    assert resolve_fast_path("AUTO", "cpu") == FastPath() == resolve_fast_path("auto", "mps")
    assert resolve_fast_path("bf16+cl", "cpu") == FastPath(precision="bf16", channels_last=True)


def test_a_spec_round_trips_through_its_name():
    for spec in ["fp32", "fp16+cl", "bf16+gn+bench", "fp16+cl+cnorm+graphs+bench", "fp16+cl+compile",
                 "fp32+compile-ro", "fp16+cl+bench+pad8"]:
        assert parse_fast_path(spec).name == spec
    assert parse_fast_path(" bench + CL + fp16 ").name == "fp16+cl+bench"


@pytest.mark.parametrize("spec, message", [
    ("fp16+fast", "unknown fast path part 'fast'"), ("cl", "exactly one precision"),
    ("fp16+bf16", "exactly one precision"), ("fp16+cl+cl", "names a part twice"),
    ("fp16+compile+graphs", "choose one of"), ("fp16+gn+cnorm", "choose one of"),
])
def test_a_bad_spec_is_a_one_line_error(spec, message):
    with pytest.raises(StylizeError, match=message):
        parse_fast_path(spec)


def test_cuda_graphs_are_refused_off_cuda_before_any_work(net):
    with pytest.raises(StylizeError, match="CUDA graphs need a CUDA device, not cpu"):
        Stylizer(net, ["a", "b", "c"], device="cpu", engine=EngineOptions(fast_path="fp16+graphs"))


def test_auto_precision_is_the_paths_and_an_explicit_one_wins(net):
    bf16 = EngineOptions(fast_path="bf16+cl")
    assert Stylizer(net, ["a", "b", "c"], device="cpu", engine=bf16).precision == "bf16"
    assert Stylizer(net, ["a", "b", "c"], device="cpu", engine=bf16, precision="fp32").precision == "fp32"
    assert Stylizer(net, ["a", "b", "c"], device="cpu").precision == "fp32"


def test_the_environment_names_a_path_for_measuring():
    assert EngineOptions.from_env({"STYLIZE_FAST_PATH": "fp16+cl"}).fast_path == "fp16+cl"
    assert EngineOptions.from_env({}).fast_path == "auto"


def test_cudnn_autotuning_is_on_for_the_block_only():
    before = torch.backends.cudnn.benchmark
    try:
        for start in (False, True):
            torch.backends.cudnn.benchmark = start
            with pytest.raises(RuntimeError):
                with cudnn_autotuned():
                    assert torch.backends.cudnn.benchmark
                    raise RuntimeError("a failed pass")
            assert torch.backends.cudnn.benchmark is start
            with cudnn_autotuned(False):
                assert torch.backends.cudnn.benchmark is start
    finally:
        torch.backends.cudnn.benchmark = before


class ReplayOnCPU(GraphRunner):
    """A "graph" that reruns the network into the captured output buffer, as a replay overwrites it."""

    def __init__(self, network) -> None:
        super().__init__(network)
        self.captures = 0

    def capture(self, x, weights) -> Captured:
        self.captures += 1
        out = self.network(x, weights)
        return Captured(x, weights, out, lambda: out.copy_(self.network(x, weights)))


def test_graph_runner_bookkeeping():
    calls = []

    def network(x, weights):
        calls.append(x.shape)
        return x * weights.sum() + 1

    runner = ReplayOnCPU(network)
    a, b = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    w = torch.ones(1, 2)
    first = runner(a, w)
    second = runner(b, w * 2)
    assert torch.equal(first, a * 2 + 1), "an output must survive the next replay (it is cloned)"
    assert torch.equal(second, b * 4 + 1), "the input and the weights are copied into the static buffers"
    assert runner.captures == 1
    runner(torch.rand(1, 3, 8, 12), w)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        runner(a, w)
    assert runner.captures == 3, "a new shape, and another autocast state, are other graphs"
    for width in range(fast.MAX_GRAPHS):
        runner(torch.rand(1, 3, 4, 16 + width), w)
    assert runner.captures == fast.MAX_GRAPHS and len(runner.graphs) == fast.MAX_GRAPHS
    c = torch.rand(1, 3, 4, 100)
    assert torch.equal(runner(c, w), c * 2 + 1), "past the cap, shapes run eagerly"


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (CUDA graphs, cuDNN)")


@cuda
@pytest.mark.parametrize("spec, bar", [("fp32+graphs", 60), ("fp32+cl+bench", 60), ("fp16+cl", 40),
                                       ("fp16+gn+bench+graphs", 40), ("bf16+cl+gn", 25),
                                       ("fp32+pad8", 60), ("fp16+cl+bench+pad8+graphs", 40)])
def test_cuda_fast_paths_render_what_eager_fp32_renders(batch, spec, bar):
    net = styled_net(NetConfig(**TINY)).cuda()
    x, weights = (t.cuda() for t in batch)
    other = torch.rand_like(x)
    eager = Stylizer(net, ["a", "b", "c"], device="cuda", precision="fp32", engine=EngineOptions(fast_path="fp32"))
    stylizer = Stylizer(net, ["a", "b", "c"], device="cuda", engine=EngineOptions(fast_path=spec))
    for _ in range(3):  # captured or compiled on the first call, replayed on the next ones
        for image in (x, other):
            assert psnr(stylizer._forward(image, weights), eager._forward(image, weights)) > bar


def test_a_captured_pass_runs_without_autocasts_weight_cache(net, batch):
    """The graph would otherwise replay reads of half-precision weight copies freed after the capture."""
    stylizer = Stylizer(net, ["a", "b", "c"], device="cpu", engine=EngineOptions(fast_path="bf16"))
    seen = []

    def network(x, weights):
        seen.append(torch.is_autocast_cache_enabled())
        return stylizer.model(x, weights)

    stylizer.fast_model = network
    stylizer._forward(*batch)
    stylizer.fast_model, stylizer.fast_path = ReplayOnCPU(network), FastPath(precision="bf16", cuda_graphs=True)
    stylizer._forward(*batch)  # captured (one call) and replayed (another)
    assert seen == [True, False, False]
