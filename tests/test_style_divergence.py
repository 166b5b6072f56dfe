"""Learning a new style never ends in a broken result (issue 29: a solid blue square, cached).

The shipped johnson model was released from a continued run: its metadata says
``warmup_steps=100, warmup_from=24354``. New styles inherited those settings, so the
warm-up factor ``(step - 24354 + 1) / 100`` made the learning rate about -243 times
STYLE_LR: Adam climbed the loss until the sigmoid saturated. A tiny model with the same
metadata reproduces it in a few steps.
"""

from pathlib import Path

import pytest
import torch
from conftest import make_painting, make_photo, make_tiny_model

from stylize import checkpoint
from stylize.finetune import Overrides, add_styles, learn_style
from stylize.settings import TrainSettings

pytest.importorskip("onnx")
TINY = dict(steps=6, image_size=32, batch_size=2, style_size=48, workers=0)


def released_model(path: Path) -> Path:
    """A tiny model whose metadata is that of a continued, released run (warm-up from a late step)."""
    from stylize.vgg import load_vgg

    make_tiny_model(path, ["a", "b"])
    ckpt = checkpoint.load(path)
    ckpt.training = TrainSettings(warmup_steps=100, warmup_from=24_354, checkpoint_every=3, preview_every=10,
                                  log_every=1, **TINY).to_dict()
    ckpt.loss_network, ckpt.step = load_vgg().network_id, 30_000
    checkpoint.save(path, ckpt)
    return path


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return released_model(tmp_path / "released.safetensors")


def test_a_released_models_warmup_does_not_make_the_rate_negative(tmp_path, model):
    """Failing before the fix: every step's rate was about -2.4 and the loss climbed."""
    reports = []
    learn_style(model, make_painting(tmp_path / "p.png", seed=5), [make_photo(tmp_path / "ph.png", (64, 48))],
                overrides=Overrides(**TINY), device="cpu", on_step=reports.append)
    assert all(r.lr > 0 for r in reports), [r.lr for r in reports]


def test_add_style_from_a_released_model_learns_downhill(tmp_path, model, photo_dir):
    reports = []
    add_styles(model, [make_painting(tmp_path / "monet.png", seed=2)], photo_dir, tmp_path / "out.safetensors",
               overrides=Overrides(steps=6), device="cpu", on_step=reports.append)
    assert all(r.lr > 0 for r in reports), [r.lr for r in reports]
    assert checkpoint.load(tmp_path / "out.safetensors").training["warmup_from"] == 0


def test_the_rate_is_never_negative_before_the_warmup_start():
    s = TrainSettings(steps=100, lr=1.0, warmup_steps=4, warmup_from=10)
    assert all(s.lr_at(step) > 0 for step in range(0, 20))
