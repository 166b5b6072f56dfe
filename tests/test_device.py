"""--device on machines we do not have: broken CUDA, several GPUs, a GPU index that is not there.

CUDA is simulated by patching torch.cuda's queries; nothing here needs a GPU.
"""

import warnings
from contextlib import contextmanager

import pytest
import torch
from typer.testing import CliRunner

from stylize.runtime import device as device_mod
from stylize.cli import app
from stylize.runtime.device import choose_device, device_scope, resolve_device
from stylize.errors import StylizeError


@pytest.fixture
def no_gpu(monkeypatch):
    """A machine with no NVIDIA driver at all."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    no_mps = lambda: False  # noqa: E731
    no_mps.__wrapped__ = no_mps  # torch._dynamo, imported lazily by the optimizer, looks for it
    monkeypatch.setattr(torch.backends.mps, "is_available", no_mps)
    monkeypatch.setattr(device_mod, "NVIDIA_DEVICE_FILES", ())


def broken_driver():
    warnings.warn("CUDA initialization: The NVIDIA driver on your system is too old (found version 11040).\n"
                  "Please update your GPU driver.", UserWarning)
    return False


def test_auto_on_a_plain_cpu_machine_says_nothing(no_gpu):
    assert choose_device("auto") == device_mod.DeviceChoice(torch.device("cpu"), None)


def test_auto_says_why_it_fell_back_when_the_driver_is_broken(no_gpu, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", broken_driver)
    choice = choose_device("auto")
    assert choice.device == torch.device("cpu")
    assert choice.note == ("using the CPU: CUDA is present but cannot be used: CUDA initialization: "
                           "The NVIDIA driver on your system is too old (found version 11040).")


def test_auto_says_why_when_torch_has_no_cuda_but_a_gpu_is_there(no_gpu, monkeypatch, tmp_path):
    (tmp_path / "nvidiactl").touch()
    monkeypatch.setattr(device_mod, "NVIDIA_DEVICE_FILES", (tmp_path / "nvidiactl",))
    monkeypatch.setattr(torch.version, "cuda", None)
    assert "this torch build has no CUDA support" in choose_device("auto").note
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert "CUDA_VISIBLE_DEVICES hides it" in choose_device("auto").note


def test_auto_falls_back_when_a_kernel_cannot_run(no_gpu, monkeypatch):
    """A card this torch has no kernels for: is_available() is true, the first operation fails."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    real_ones = torch.ones

    def ones(*args, device=None, **kwargs):
        if device == "cuda":
            raise RuntimeError("CUDA error: no kernel image is available for execution on the device\nmore")
        return real_ones(*args, device=device, **kwargs)

    monkeypatch.setattr(torch, "ones", ones)
    choice = choose_device("auto")
    assert choice.device.type == "cpu"
    assert choice.note == "using the CPU: CUDA is present but cannot run: CUDA error: no kernel image is available " \
                          "for execution on the device"
    with pytest.raises(StylizeError, match="^--device cuda: CUDA is present but cannot run: .*try --device cpu"):
        choose_device("cuda")


def fake_gpus(monkeypatch, count):
    monkeypatch.setattr(device_mod, "cuda_problem", lambda: None)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


@pytest.mark.parametrize("count, name, message", [
    (1, "cuda:7", "--device cuda:7: this machine has 1 CUDA GPU (cuda:0)"),
    (4, "cuda:4", "--device cuda:4: this machine has 4 CUDA GPUs (cuda:0 to cuda:3)"),
    (1, "cuda:x", "--device cuda:x: choose one of auto, cpu, cuda, mps (or cuda:N)"),
    (1, "mps:1", "--device mps:1: choose one of"),
    (1, "tpu", "--device tpu: choose one of"),
])
def test_bad_device_names_are_one_line(monkeypatch, count, name, message):
    fake_gpus(monkeypatch, count)
    with pytest.raises(StylizeError) as caught:
        choose_device(name)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_an_existing_gpu_index_is_accepted(monkeypatch):
    fake_gpus(monkeypatch, 2)
    assert resolve_device("CUDA:1") == torch.device("cuda", 1)
    assert resolve_device(torch.device("cuda", 1)) == torch.device("cuda", 1)
    assert choose_device("auto") == device_mod.DeviceChoice(torch.device("cuda"), None)


@pytest.mark.filterwarnings("ignore:CUDA initialization")
def test_cli_prints_the_fallback_reason_and_errors_in_one_line(no_gpu, monkeypatch, tmp_path, style_dir, photo_dir):
    monkeypatch.setattr(torch.cuda, "is_available", broken_driver)
    runner = CliRunner()
    out = tmp_path / "m.safetensors"
    result = runner.invoke(app, ["train", str(style_dir), "--content", str(photo_dir), "-o", str(out),
                                 "--steps", "1", "--batch-size", "1", "--image-size", "32", "--style-size", "32",
                                 "--workers", "0", "--preset", "small"])
    assert result.exit_code == 0, result.output
    assert "warning: using the CPU: CUDA is present but cannot be used: CUDA initialization: The NVIDIA driver" \
           in result.output
    fake_gpus(monkeypatch, 1)
    result = runner.invoke(app, ["train", str(style_dir), "--content", str(photo_dir), "-o", str(out), "--device",
                                 "cuda:7"])
    assert result.exit_code == 1 and result.output == "error: --device cuda:7: this machine has 1 CUDA GPU (cuda:0)\n"


def test_device_scope_makes_the_gpu_current_only_for_cuda_with_an_index(monkeypatch):
    entered = []

    @contextmanager
    def cuda_device(device):
        entered.append(device)
        yield

    monkeypatch.setattr(torch.cuda, "device", cuda_device)
    for device in (torch.device("cpu"), torch.device("cuda")):
        with device_scope(device):
            pass
    with device_scope(torch.device("cuda", 1)):
        assert entered == [torch.device("cuda", 1)]


def test_training_iterates_its_loader_with_its_gpu_current(monkeypatch, tmp_path, style_dir, photo_dir):
    """The pin-memory thread takes the current device when the loader starts iterating."""
    from torch.utils.data import DataLoader

    from stylize.train import loop as train_mod

    state = {"inside": False, "checked": 0}

    @contextmanager
    def scope(device):
        state["inside"] = True
        try:
            yield
        finally:
            state["inside"] = False

    real_iter = DataLoader.__iter__

    def checked_iter(self):
        state["checked"] += 1
        assert state["inside"], "the loader started outside device_scope(device)"
        return real_iter(self)

    monkeypatch.setattr(train_mod, "device_scope", scope)
    monkeypatch.setattr(DataLoader, "__iter__", checked_iter)
    settings = train_mod.TrainSettings(steps=1, batch_size=1, image_size=32, style_size=32, workers=0, preset="small")
    train_mod.train(style_dir, photo_dir, tmp_path / "m.safetensors", settings, device="cpu")
    assert state["checked"] == 1 and not state["inside"]
