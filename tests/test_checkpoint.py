"""Checkpoints: round trip, metadata, and clear errors for anything malformed."""

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from stylize.io import atomic
from stylize.model import checkpoint
from stylize.errors import StylizeError
from stylize.model.header import tensor_shapes
from stylize.config import PRESETS, NetConfig
from stylize.model.network import StyleNet


def _two_style_net() -> StyleNet:
    torch.manual_seed(0)
    net = StyleNet(NetConfig(channels=(8, 16, 32), n_residual=1, n_styles=2))
    with torch.no_grad():
        for p in net.parameters():
            if p.ndim == 2:
                p.add_(torch.randn_like(p))
    return net.eval()


def test_round_trip_keeps_weights_styles_and_metadata(tmp_path: Path):
    net = _two_style_net()
    path = tmp_path / "m.safetensors"
    checkpoint.save(path, checkpoint.Checkpoint(net=net, styles=["a", "b"], step=7, training={"lr": 0.1},
                                                loss_network="vgg16-test"))
    loaded = checkpoint.load(path)
    assert loaded.styles == ["a", "b"] and loaded.step == 7 and loaded.training == {"lr": 0.1}
    assert loaded.loss_network == "vgg16-test" and loaded.optimizer_state is None
    x = torch.rand(1, 3, 20, 20)
    with torch.no_grad():
        assert torch.equal(loaded.net(x, 0), net(x, 0))
        assert (loaded.net(x, 0) - loaded.net(x, 1)).abs().mean() > 1e-3
    meta = checkpoint.read_metadata(path)
    assert meta["format_version"] == checkpoint.FORMAT_VERSION and meta["config"]["n_styles"] == 2


def test_half_storage_loads_as_float32(tmp_path: Path):
    path = tmp_path / "h.safetensors"
    checkpoint.save(path, checkpoint.Checkpoint(net=_two_style_net(), styles=["a", "b"]), half=True)
    loaded = checkpoint.load(path)
    assert all(p.dtype == torch.float32 for p in loaded.net.parameters())


def test_optimizer_state_round_trips(tmp_path: Path):
    net = _two_style_net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net(torch.rand(1, 3, 16, 16), 0).mean().backward()
    opt.step()
    path = tmp_path / "t.safetensors"
    checkpoint.save(path, checkpoint.Checkpoint(net=net, styles=["a", "b"], step=1), optimizer=opt)
    loaded = checkpoint.load(path)
    fresh = torch.optim.Adam(loaded.net.parameters(), lr=1e-3)
    fresh.load_state_dict(loaded.optimizer_state)
    saved, restored = opt.state_dict()["state"], fresh.state_dict()["state"]
    assert saved.keys() == restored.keys()
    for key in saved:
        assert torch.equal(saved[key]["exp_avg_sq"], restored[key]["exp_avg_sq"])


def _bad(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def _fifo(path: Path) -> Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("FIFOs (POSIX)")
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.safetensors", "no such checkpoint"),
    (lambda d: _bad(d, "empty.safetensors", b""), "empty"),
    (lambda d: _bad(d, "junk.safetensors", b"\x00" * 64), "not a readable"),
    (lambda d: _bad(d, "pickle.pt", b"\x80\x04\x95" + b"cos\nsystem\n" * 4), "not a readable"),
    (lambda d: _fifo(d / "pipe.safetensors"), "not a regular file"),
])
def test_malformed_files_give_one_line_errors(tmp_path: Path, make, message):
    path = make(tmp_path)
    with pytest.raises(StylizeError, match=message) as info:
        checkpoint.load(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_truncated_checkpoint(tmp_path: Path):
    path = tmp_path / "m.safetensors"
    checkpoint.save(path, checkpoint.Checkpoint(net=_two_style_net(), styles=["a", "b"]))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(StylizeError, match=str(path)):
        checkpoint.load(path)


def test_foreign_safetensors_file(tmp_path: Path):
    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(3)}, str(path), metadata={"format": "pt"})
    with pytest.raises(StylizeError, match="not a stylize checkpoint"):
        checkpoint.load(path)


def test_weights_not_matching_metadata(tmp_path: Path):
    path = tmp_path / "m.safetensors"
    checkpoint.save(path, checkpoint.Checkpoint(net=_two_style_net(), styles=["a", "b"]))
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["stylize"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta["config"]["channels"] = [4, 8, 16]
    save_file(tensors, str(path), metadata={"stylize": json.dumps(meta)})
    with pytest.raises(StylizeError, match="do not match"):
        checkpoint.load(path)


def test_failed_write_keeps_previous_file(tmp_path: Path, monkeypatch):
    path = tmp_path / "m.safetensors"
    checkpoint.save(path, checkpoint.Checkpoint(net=_two_style_net(), styles=["a", "b"], step=1))
    before = path.read_bytes()

    def boom(fd, data):
        os.write(fd, data[:100])
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic, "_write_all", boom)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, checkpoint.Checkpoint(net=_two_style_net(), styles=["a", "b"], step=2))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_export_drops_optimizer_state_and_halves_the_size(tmp_path: Path):
    from typer.testing import CliRunner

    from stylize.cli import app

    net = _two_style_net()
    optimizer = torch.optim.Adam(net.parameters())
    net(torch.rand(1, 3, 16, 16), 0).mean().backward()
    optimizer.step()
    trained = tmp_path / "run.safetensors"
    checkpoint.save(trained, checkpoint.Checkpoint(net=net, styles=["a", "b"], step=3), optimizer=optimizer)
    before = trained.read_bytes()

    lean = tmp_path / "lean.safetensors"
    result = CliRunner().invoke(app, ["export", str(trained), "-o", str(lean)])
    assert result.exit_code == 0, result.output
    assert f"saved {lean}" in result.output and "2 styles: a, b" in result.output
    assert trained.read_bytes() == before
    # Adam's two moments triple the file; fp16 halves what is left.
    assert lean.stat().st_size < trained.stat().st_size / 5
    loaded = checkpoint.load(lean)
    assert loaded.optimizer_state is None and loaded.step == 3 and loaded.styles == ["a", "b"]
    x = torch.rand(1, 3, 20, 20)
    with torch.no_grad():
        assert (loaded.net(x, 1) - net(x, 1)).abs().max() < 1e-2

    full = tmp_path / "full.safetensors"
    assert CliRunner().invoke(app, ["export", str(trained), "-o", str(full), "--full"]).exit_code == 0
    assert lean.stat().st_size < full.stat().st_size < trained.stat().st_size
    refused = CliRunner().invoke(app, ["export", str(trained), "-o", str(trained)])
    assert refused.exit_code == 1 and "is the input model" in refused.output


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_a_new_checkpoint_gets_the_umask_permissions(tmp_path: Path):
    old_umask = os.umask(0o022)
    try:
        path = tmp_path / "m.safetensors"
        checkpoint.save(path, checkpoint.Checkpoint(net=_two_style_net(), styles=["a", "b"]))
        # safetensors writes its files as 0o600; a model is meant to be shared.
        assert path.stat().st_mode & 0o777 == 0o644
        path.chmod(0o640)
        checkpoint.save(path, checkpoint.Checkpoint(net=_two_style_net(), styles=["a", "b"]))
        assert path.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old_umask)


@pytest.mark.parametrize("config", [*PRESETS.values(), NetConfig(channels=(4, 5, 6), n_residual=0, n_styles=7),
                                    NetConfig(channels=(4, 5, 6), n_residual=1, upsample="shuffle", outer_kernel=5),
                                    NetConfig(channels=(4, 5, 6), n_residual=1, separable=True, full_res=False)],
                         ids=[*PRESETS, "odd", "shuffle-full-res", "separable-nearest-half-res"])
def test_the_torch_free_shapes_are_the_networks(config: NetConfig):
    """styles and apply check a checkpoint's tensors without PyTorch, from tensor_shapes."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in StyleNet(config).state_dict().items()}
    assert tensor_shapes(config.to_dict()) == expected


def test_the_layer_kinds_defaults_are_the_configs():
    """A checkpoint without a layer-kind field means the paper's layers, in the header check as in NetConfig."""
    from stylize.model.header import LAYER_KINDS

    assert {key: kinds[0] for key, kinds in LAYER_KINDS.items()} == {key: getattr(NetConfig(), key) for key in LAYER_KINDS}
