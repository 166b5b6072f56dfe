"""`stylize export --onnx`: the graph ONNX Runtime runs computes what the torch network does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import TINY_STYLES
from stylize.model import checkpoint
from stylize.cli import app
from stylize.model.engine import FastStyleNet
from stylize.apply.tiling import tile_margin, tile_spans
from stylize.model.norm import BlendedStats, NormStats, shared_stats

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


@pytest.fixture(scope="module", params=["tiny_model", "tiny_fast_model"])
def model(request: pytest.FixtureRequest) -> Path:
    """Every test runs on the paper's layers and on the ``fast`` preset's (separable, pixel shuffle)."""
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def exported(model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    result = CliRunner().invoke(app, ["export", str(model), "--onnx", str(out)])
    assert result.exit_code == 0, result.output
    assert f"saved {out}" in result.output
    return out


@pytest.fixture(scope="module")
def session(exported: Path):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(exported), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def net(model: Path):
    return checkpoint.load(model).net.eval()


@pytest.mark.parametrize("size", [(40, 48), (37, 50), (8, 8), (97, 66)])
def test_graph_matches_the_network_at_any_size(session, net, size):
    generator = torch.Generator().manual_seed(sum(size))
    x = torch.rand(2, 3, *size, generator=generator)
    style = torch.tensor([[1.0, 0.0, 0.0], [0.2, 0.5, 0.3]])  # a style and a mix
    stylized = session.run(["stylized"], {"image": x.numpy(), "style": style.numpy()})[0]
    with torch.no_grad():
        textbook = net(x, style).numpy()
        fast = FastStyleNet(net)(x, style).numpy()
    assert stylized.shape == (2, 3, *size)
    assert psnr(stylized, textbook) >= 40
    assert psnr(stylized, fast) >= 40
    assert psnr(stylized[0], stylized[1]) < 40  # the mix is not the plain style


def test_metadata_names_the_styles(exported: Path):
    import onnx

    props = {p.key: p.value for p in onnx.load(str(exported)).metadata_props}
    assert json.loads(props["styles"]) == TINY_STYLES


def test_no_convolution_writes_fewer_channels_than_the_blocked_layout_fills(exported: Path, net):
    """ONNX Runtime pads a convolution's outputs to blocks of 8-16, so an RGB output convolution
    wastes most of its work: the graph carries it as rows (see ``graph_forward``)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(exported)).graph
    shapes = {t.name: numpy_helper.to_array(t).shape for t in graph.initializer}
    outputs = [shapes[node.input[1]][0] for node in graph.node if node.op_type == "Conv" and node.input[1] in shapes]
    assert outputs and min(outputs) >= 8 or net.out_conv.out_channels >= 8


def test_statistics_outputs_are_the_networks(session, net):
    x = torch.rand(1, 3, 32, 44)
    style = torch.tensor([[0.0, 1.0, 0.0]])
    _, mean, var = session.run(None, {"image": x.numpy(), "style": style.numpy()})
    with torch.no_grad(), shared_stats(net, NormStats()) as stats:
        net(x, style)
    assert mean.shape == var.shape == (1, sum(m.shape[1] for m, _ in stats.pairs))
    np.testing.assert_allclose(mean, torch.cat([m.flatten(1) for m, _ in stats.pairs], 1).numpy(), atol=1e-4)
    np.testing.assert_allclose(var, torch.cat([v.flatten(1) for _, v in stats.pairs], 1).numpy(),
                               rtol=1e-3, atol=1e-5)


def test_tiles_with_whole_image_statistics_match_the_whole_image(session, net):
    """Tiling as Stylizer does it: statistics from the whole image, every tile normalized with them."""
    height, width, tile = 56, 200, 120
    x = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
    style = np.array([[0.0, 0.0, 1.0]], dtype=np.float32)
    whole, mean, var = session.run(None, {"image": x, "style": style})
    tiled = np.empty_like(whole)
    spans = tile_spans(width, tile, tile_margin(net.config))
    assert len(spans) > 1
    for x0, x1, left, right in spans:
        piece = session.run(["stylized"], {"image": x[..., x0:x1], "style": style, "prior_mean": mean,
                                           "prior_var": var, "prior_weight": np.array(1.0, np.float32)})[0]
        tiled[..., left:right] = piece[..., left - x0:right - x0]
    assert psnr(tiled, whole) >= 60
    own = session.run(["stylized"], {"image": x[..., :tile], "style": style})[0]  # each tile its own statistics
    assert psnr(own[..., :tile // 2], whole[..., :tile // 2]) < psnr(tiled, whole)


def test_prior_weight_blends_statistics_as_blended_stats_does(session, net):
    """Video smoothing: a frame normalized with statistics pulled toward the previous frame's."""
    first, second = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    style = torch.tensor([[1.0, 0.0, 0.0]])
    _, mean, var = session.run(None, {"image": first.numpy(), "style": style.numpy()})
    smoothed, _, _ = session.run(None, {"image": second.numpy(), "style": style.numpy(), "prior_mean": mean,
                                        "prior_var": var, "prior_weight": np.array(0.7, np.float32)})
    with torch.no_grad():
        with shared_stats(net, NormStats()) as previous:
            net(first, style)
        with shared_stats(net, BlendedStats(previous.pairs, 0.7)):
            expected = net(second, style).numpy()
        with shared_stats(net, BlendedStats(previous.pairs, 0.7)):
            fast = FastStyleNet(net)(second, style).numpy()
    assert psnr(smoothed, expected) >= 40
    assert psnr(fast, expected) >= 40
    plain = session.run(["stylized"], {"image": second.numpy(), "style": style.numpy()})[0]
    assert psnr(plain, expected) < 40  # the prior did change the frame


def test_export_refuses_bad_requests(tiny_model: Path, tmp_path: Path):
    runner = CliRunner()
    neither = runner.invoke(app, ["export", str(tiny_model)])
    assert neither.exit_code != 0 and "give one of" in neither.output
    both = runner.invoke(app, ["export", str(tiny_model), "-o", str(tmp_path / "a.safetensors"),
                               "--onnx", str(tmp_path / "a.onnx")])
    assert both.exit_code != 0
    missing = runner.invoke(app, ["export", str(tiny_model), "--onnx", str(tmp_path / "no" / "a.onnx")])
    assert missing.exit_code == 1 and "does not exist" in missing.output
    assert not (tmp_path / "no").exists()
