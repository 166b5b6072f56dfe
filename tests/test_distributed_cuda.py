"""torchrun on GPUs, simulated: which backend, which device, how DDP is built.

init_process_group, DistributedDataParallel and torch.cuda's device calls are mocked;
one test runs the agreement collective for real on two CPU processes (gloo).
"""

import os
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import make_painting, make_photo
from typer.testing import CliRunner

from stylize.runtime import distributed
from stylize.cli import app
from stylize.runtime.device import DeviceChoice
from stylize.errors import StylizeError


@pytest.fixture
def torchrun_rank_1_of_2(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    calls = {}
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.setdefault("set_device", device))
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    return calls


class Joined(Exception):
    """Stops a command right after it joined the process group."""


def test_a_gpu_rank_joins_an_nccl_group_on_its_local_gpu(torchrun_rank_1_of_2, monkeypatch):
    calls = torchrun_rank_1_of_2
    monkeypatch.setattr(dist, "init_process_group", lambda backend, **kw: calls.setdefault("backend", backend))
    assert distributed.init_from_env(torch.device("cuda")) == torch.device("cuda", 1)
    assert calls == {"set_device": torch.device("cuda", 1), "backend": "nccl"}


def test_apply_with_a_style_image_joins_nccl_on_gpus(torchrun_rank_1_of_2, monkeypatch, tmp_path):
    """apply --style-image trains under DDP: the group it joins must be NCCL, not gloo."""
    calls = torchrun_rank_1_of_2

    def init_process_group(backend, **kwargs):
        calls["backend"] = backend
        raise Joined

    monkeypatch.setattr(dist, "init_process_group", init_process_group)
    monkeypatch.setattr("stylize.runtime.device.choose_device", lambda name: DeviceChoice(torch.device("cuda")))
    photo, painting = make_photo(tmp_path / "p.png"), make_painting(tmp_path / "s.png")
    result = CliRunner().invoke(app, ["apply", str(photo), "--style-image", str(painting), "--device", "cuda"])
    assert isinstance(result.exception, Joined)
    assert calls == {"set_device": torch.device("cuda", 1), "backend": "nccl"}


def test_ddp_on_a_gpu_uses_its_local_rank_and_nccl(monkeypatch):
    built = []
    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel", lambda net, **kw: built.append(kw) or net)
    net = torch.nn.Linear(2, 2)
    monkeypatch.setattr(dist, "get_backend", lambda group=None: "nccl")
    assert distributed.data_parallel(net, torch.device("cuda", 3)) is net
    assert distributed.data_parallel(net, torch.device("cpu")) is net
    assert built == [{"device_ids": [3]}, {}]
    monkeypatch.setattr(dist, "get_backend", lambda group=None: "gloo")
    with pytest.raises(StylizeError, match="^training on cuda:3 under torchrun needs an NCCL process group, not gloo"):
        distributed.data_parallel(net, torch.device("cuda", 3))


def test_training_builds_ddp_through_data_parallel(monkeypatch, tmp_path, style_dir, photo_dir):
    """fit() under a 2-rank world wraps the network with data_parallel (here a recording stand-in)."""
    from stylize.train import loop as train_mod

    wrapped = []
    monkeypatch.setattr(distributed, "world", lambda: (0, 2))
    monkeypatch.setattr(train_mod, "data_parallel", lambda net, device: wrapped.append(device) or net)
    monkeypatch.setattr(train_mod, "agree", lambda terms, stop, world: ({k: float(v.detach()) for k, v in terms.items()},
                                                                         stop))
    monkeypatch.setattr(dist, "barrier", lambda: None)
    settings = train_mod.TrainSettings(steps=1, batch_size=2, image_size=32, style_size=32, workers=0, preset="small")
    train_mod.train(style_dir, photo_dir, tmp_path / "m.safetensors", settings, device="cpu")
    assert wrapped == [torch.device("cpu")]


def _agree_worker(rank: int, store: str, flags: list[bool], results) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=len(flags))
    try:
        results[rank] = distributed.everyone(flags[rank], torch.device("cpu"))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("flags, agreed", [([True, False], False), ([True, True], True)])
def test_ranks_agree_on_a_flag(flags, agreed):
    store = os.path.join(tempfile.mkdtemp(), "store")
    results = mp.get_context("spawn").Manager().dict()
    mp.spawn(_agree_worker, args=(store, flags, results), nprocs=len(flags), join=True)
    assert dict(results) == {0: agreed, 1: agreed}
    assert distributed.everyone(False, torch.device("cpu")) is False  # one process: its own flag
