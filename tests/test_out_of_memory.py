"""Running out of memory while stylizing, simulated on the CPU.

A dispatch mode plays a device that is too small: every convolution whose input is
larger than a limit raises the error a GPU would (torch.OutOfMemoryError, cuDNN's plain
RuntimeError, MPS's), from inside the network, as the real thing does.
"""

import weakref

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from stylize.apply import torch_backend as inference, memory
from stylize.errors import StylizeError
from stylize.config import ApplySettings
from stylize.apply.torch_backend import Stylizer
from stylize.config import NetConfig

ERRORS = {
    "cuda": lambda: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 15.7 GiB total)"),
    "cudnn": lambda: RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"),
    "cublas": lambda: RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"),
    "mps": lambda: RuntimeError("MPS backend out of memory (MPS allocated: 17.5 GB, other allocations: 1.2 GB)"),
}


class SmallDevice(TorchDispatchMode):
    """Fails every convolution whose input is longer than ``limit`` px, keeping a weak
    reference to the input it refused (an activation of the failed pass)."""

    def __init__(self, limit: int, error) -> None:
        super().__init__()
        self.limit, self.error = limit, error
        self.failures: list[weakref.ref] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        x = args[0] if args else None
        if "conv" in func.__name__ and isinstance(x, torch.Tensor) and max(x.shape[-2:]) > self.limit:
            self.failures.append(weakref.ref(x))
            raise self.error()
        return func(*args, **(kwargs or {}))


@pytest.fixture
def stylizer(tiny_model):
    return Stylizer.load(tiny_model, device="cpu")


@pytest.fixture
def photo():
    torch.manual_seed(0)
    return torch.rand(3, 136, 184)


@pytest.fixture
def released(monkeypatch):
    """Records, at each release of the allocator's cache, whether the failed passes' tensors were gone."""
    calls = []

    def release(device):
        calls.append([ref() is None for ref in SmallDevice.active.failures])

    monkeypatch.setattr(inference, "release", release)
    return calls


def render(stylizer, photo, limit, error, **settings):
    SmallDevice.active = SmallDevice(limit, error)
    with SmallDevice.active:
        return stylizer.stylize(photo, stylizer.choose("wave")[0], ApplySettings(**settings))


@pytest.mark.parametrize("kind", sorted(ERRORS))
def test_auto_tiles_shrink_until_the_pass_fits_and_memory_is_freed_first(stylizer, photo, released, monkeypatch,
                                                                          kind):
    monkeypatch.setattr("stylize.apply.tiling.AUTO_TILE_OTHER", 400)
    assert stylizer.min_tile == 112
    out = render(stylizer, photo, 130, ERRORS[kind])
    assert len(SmallDevice.active.failures) == 1  # untiled failed, then 184 -> 92 -> at least min_tile fit
    assert released == [[True]]  # the failed pass's activations were freed before the cache was
    expected = stylizer.stylize(photo, stylizer.choose("wave")[0], ApplySettings(tile_size=112))
    assert torch.equal(out, expected)


def test_an_explicit_tile_size_is_retried_smaller_too_and_remembered(stylizer, photo, released):
    out = render(stylizer, photo, 130, ERRORS["cudnn"], tile_size=160)
    assert len(SmallDevice.active.failures) == 1 and released == [[True]]
    assert stylizer.tile_cap == 112
    assert torch.equal(out, stylizer.stylize(photo, stylizer.choose("wave")[0], ApplySettings(tile_size=112)))
    render(stylizer, photo, 130, ERRORS["cuda"], tile_size=160)  # the next photo starts at the size that worked
    assert SmallDevice.active.failures == []


def test_never_tile_and_too_small_a_device_are_one_line_errors(stylizer, photo, released):
    with pytest.raises(StylizeError, match=r"^out of cpu memory for a 184x136 image untiled \(--tile-size 0\); "
                                           r"let it tile, or use --max-size$"):
        render(stylizer, photo, 130, ERRORS["cuda"], tile_size=0)
    with pytest.raises(StylizeError, match=r"^out of cpu memory for a 184x136 image even in tiles of 112 px; "):
        render(stylizer, photo, 100, ERRORS["mps"])
    assert all(all(freed) for freed in released)


def test_other_runtime_errors_are_not_mistaken_for_memory(stylizer, photo, released):
    with pytest.raises(RuntimeError, match="CUDNN_STATUS_EXECUTION_FAILED"):
        render(stylizer, photo, 130, lambda: RuntimeError("cuDNN error: CUDNN_STATUS_EXECUTION_FAILED"))
    assert released == []


def test_out_of_memory_errors_are_recognised():
    assert all(memory.is_out_of_memory(make()) for make in ERRORS.values())
    assert memory.is_out_of_memory(RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: "
                                                "can't allocate memory: you tried to allocate 68719476736 bytes."))
    assert not memory.is_out_of_memory(RuntimeError("Expected all tensors to be on the same device"))
    assert not memory.is_out_of_memory(ValueError("out of memory"))


def fake_cuda_memory(monkeypatch, free, reserved=0, allocated=0):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free, 80 * 2**30))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: reserved)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: allocated)


def test_the_cuda_tile_follows_the_free_memory(monkeypatch):
    cuda, johnson = torch.device("cuda"), NetConfig()
    per_pixel = memory.pass_bytes_per_pixel(johnson, 2)
    assert per_pixel == (3 * 32 + 64 // 4) * 2 + 36
    fake_cuda_memory(monkeypatch, free=2 * 2**30, reserved=2**30, allocated=2**29)  # cached blocks count as free
    side = memory.auto_tile(cuda, johnson, 2)
    assert side % 4 == 0
    assert side == int(((2.5 * 2**30) * memory.USABLE_FRACTION / (memory.SAFETY * per_pixel)) ** 0.5) // 4 * 4
    fake_cuda_memory(monkeypatch, free=140 * 2**30)  # an H200: capped so no tensor passes 2**31 elements
    assert memory.auto_tile(cuda, johnson, 2) == 8180 and 32 * (8180 + 8) ** 2 < 2**31
    assert memory.auto_tile(torch.device("cpu"), johnson, 4) is None
    assert memory.auto_tile(torch.device("mps"), johnson, 4) is None
