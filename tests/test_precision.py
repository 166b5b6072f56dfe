"""--precision for training: what ``auto`` picks per device, and what is refused."""

import pytest
import torch

from stylize.runtime import precision as prec
from stylize.errors import StylizeError
from stylize.runtime.precision import cpu_flags_have_bf16, training_precision

CPU, CUDA, MPS = torch.device("cpu"), torch.device("cuda", 0), torch.device("mps")


def test_cpuinfo_flags():
    assert cpu_flags_have_bf16("processor: 0\nflags\t\t: fpu sse avx512f avx512_bf16 avx512_vnni\n")
    assert cpu_flags_have_bf16("flags : fpu amx_bf16 amx_tile\n")
    assert not cpu_flags_have_bf16("flags : fpu avx512f avx512bw avx512_vnni\n")
    assert not cpu_flags_have_bf16("no flags line here")


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_on_cpu_follows_native_bf16(monkeypatch, native, expected):
    monkeypatch.setattr(prec, "cpu_has_native_bf16", lambda: native)
    chosen = training_precision("auto", CPU)
    assert chosen.name == expected and not chosen.scale_gradients
    assert chosen.dtype == (torch.bfloat16 if native else None)


@pytest.mark.parametrize("capability, expected, scaled", [((8, 0), "bf16", False), ((9, 0), "bf16", False),
                                                          ((7, 5), "fp16", True), ((7, 0), "fp16", True)])
def test_auto_on_cuda_follows_compute_capability(monkeypatch, capability, expected, scaled):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    chosen = training_precision("auto", CUDA)
    assert (chosen.name, chosen.scale_gradients) == (expected, scaled)


def test_explicit_choices_the_device_cannot_run_are_one_line_errors(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    with pytest.raises(StylizeError, match="T4.*no native bf16"):
        training_precision("bf16", CUDA)
    with pytest.raises(StylizeError, match="fp16 is not supported for training on the CPU"):
        training_precision("fp16", CPU)
    with pytest.raises(StylizeError, match="mps"):
        training_precision("bf16", MPS)
    with pytest.raises(StylizeError, match="unknown precision 'half'"):
        training_precision("half", CPU)
    assert training_precision("auto", MPS).name == "fp32"
    assert training_precision("bf16", CPU).dtype == torch.bfloat16  # emulated but allowed when asked for


def test_bf16_autocast_on_cpu_keeps_the_gram_in_fp32():
    from stylize.train.loss import gram

    features = torch.randn(2, 8, 6, 6)
    with training_precision("bf16", CPU).autocast(CPU):
        g = gram(features.to(torch.bfloat16))
    assert g.dtype == torch.float32
    ref = gram(features.to(torch.bfloat16).float())
    assert torch.allclose(g, ref, rtol=1e-6, atol=1e-7)
