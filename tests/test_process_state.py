"""Importing and using the library changes no process-wide state; only the CLI's one call does."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from stylize.runtime.process import own_process

LIBRARY_USER = textwrap.dedent("""
    import ctypes, os, pkgutil, importlib
    environment = dict(os.environ)
    loaded = []
    real_cdll = ctypes.CDLL
    def spy(name, *args, **kwargs):
        loaded.append(name)
        return real_cdll(name, *args, **kwargs)
    ctypes.CDLL = spy

    from PIL import Image
    pillow_limit = Image.MAX_IMAGE_PIXELS
    import torch
    torch_state = (torch.get_num_threads(), torch.get_default_dtype(), torch.is_grad_enabled())

    import stylize
    for module in pkgutil.iter_modules(stylize.__path__):
        if module.name != "__main__":  # that one runs the CLI
            importlib.import_module(f"stylize.{module.name}")
    from stylize import Stylizer
    from stylize.model.network import NetConfig, StyleNet
    stylizer = Stylizer(StyleNet(NetConfig(channels=(8, 8, 8), n_residual=1)), ["a"], device="cpu")
    stylizer.apply(Image.new("RGB", (40, 32), "orange"))

    assert Image.MAX_IMAGE_PIXELS == pillow_limit, Image.MAX_IMAGE_PIXELS
    assert not [name for name in loaded if str(name).rsplit("/", 1)[-1].startswith("libc.so")], loaded
    assert (torch.get_num_threads(), torch.get_default_dtype(), torch.is_grad_enabled()) == torch_state
    assert dict(os.environ) == environment
    print("unchanged")
""")


def test_library_changes_no_global_state():
    done = subprocess.run([sys.executable, "-c", LIBRARY_USER], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "unchanged"


def test_cli_owns_the_process(monkeypatch):
    from PIL import Image

    from stylize.runtime.process import EngineOptions

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    monkeypatch.setenv("STYLIZE_NNPACK", "0")
    monkeypatch.setenv("STYLIZE_MALLOC_TUNING", "0")
    assert own_process() == EngineOptions(nnpack=False)
    assert Image.MAX_IMAGE_PIXELS is None


CONSOLE_USER = textwrap.dedent("""
    import atexit, os, sys
    atexit.register(lambda: print(os.environ.get("OPENBLAS_NUM_THREADS")))  # the exit handlers still run
    sys.argv = ["stylize", "--version"]
    from stylize.__main__ import console
    console()
""")


def test_the_command_runs_numpys_blas_on_one_thread_unless_told_otherwise():
    """numpy's OpenBLAS reads the variable when it loads; its idle workers would spin against ONNX Runtime."""
    import os

    environment = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    for given, expected in ((None, "1"), ("3", "3")):
        env = environment if given is None else {**environment, "OPENBLAS_NUM_THREADS": given}
        done = subprocess.run([sys.executable, "-c", CONSOLE_USER], capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split()[-1] == expected


def test_main_called_in_a_program_puts_back_the_warning_display_and_the_debug_variable(monkeypatch, tmp_path):
    import os
    import warnings

    from stylize.cli import main

    monkeypatch.delenv("STYLIZE_DEBUG", raising=False)
    shown = warnings.showwarning
    assert main(["--debug", "styles", "-m", str(tmp_path / "missing.safetensors")]) == 1
    assert "STYLIZE_DEBUG" not in os.environ and warnings.showwarning is shown
