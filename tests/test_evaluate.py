"""The quality evaluation: network loss beside the Gatys L-BFGS baseline."""

import pytest
import torch
from typer.testing import CliRunner

from stylize.cli import app
from stylize.loss import LossWeights, PerceptualLoss
from stylize.train import TrainSettings, train

pytest.importorskip("onnx")


def test_gatys_lowers_the_loss_with_more_iterations():
    from stylize.vgg import load_vgg

    torch.manual_seed(0)
    painting = torch.rand(3, 40, 40)
    loss = PerceptualLoss(load_vgg(), [painting], LossWeights())
    photo = torch.rand(1, 3, 32, 32)
    style = torch.zeros(1, dtype=torch.long)
    from stylize.evaluate import gatys

    images = gatys(loss, photo, style, [2, 10])
    with torch.no_grad():
        start = loss(photo, photo, style)["total"]
        after2, after10 = (loss(images[b], photo, style)["total"] for b in (2, 10))
    assert after10 < after2 < start


def test_evaluate_command_prints_a_table(tmp_path, style_dir, photo_dir):
    out = tmp_path / "m.safetensors"
    train(style_dir, photo_dir, out, TrainSettings(steps=2, batch_size=2, image_size=32, style_size=48,
                                                     preset="small", workers=0), device="cpu")
    result = CliRunner().invoke(app, ["evaluate", str(out), "--styles", str(style_dir), "--photos", str(photo_dir),
                                      "--size", "32", "--iterations", "1,3", "--limit", "2", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "| stripes |" in result.output and "| waves |" in result.output and "L-BFGS 3" in result.output
    bad = CliRunner().invoke(app, ["evaluate", str(out), "--styles", str(style_dir), "--photos", str(photo_dir),
                                   "--iterations", "many"])
    assert bad.exit_code == 1 and "comma-separated integers" in bad.output
