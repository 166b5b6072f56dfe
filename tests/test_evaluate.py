"""The quality evaluation: network loss beside the Gatys L-BFGS baseline."""

import pytest
import torch
from conftest import make_painting, make_photo
from typer.testing import CliRunner

from stylize.cli import app
from stylize.loss import LossWeights, PerceptualLoss
from stylize.train import TrainSettings, train

pytest.importorskip("onnx")


def test_gatys_lowers_the_loss_at_every_budget(tmp_path):
    from stylize.evaluate import gatys
    from stylize.imageio import read_image
    from stylize.vgg import load_vgg

    # These two images stalled the baseline when its line search was starved: L-BFGS
    # allowed one function evaluation per iteration, so a failed trial step became a zero
    # step, and L-BFGS never moved again (32e6 after 10, 20 and 40 iterations).
    photo = read_image(make_photo(tmp_path / "photo.png", size=(32, 32), seed=1)).rgb[None]
    painting = read_image(make_painting(tmp_path / "painting.png", size=(64, 64), seed=1)).rgb
    loss = PerceptualLoss(load_vgg(), [painting], LossWeights())
    style = torch.zeros(1, dtype=torch.long)
    budgets = [5, 10, 20, 40]
    images = gatys(loss, photo, style, budgets)
    with torch.no_grad():
        totals = [loss(images[b], photo, style)["total"].item() for b in budgets]
    assert all(later < 0.95 * earlier for earlier, later in zip(totals, totals[1:])), totals


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


def test_the_table_gives_the_verdict_against_100_iterations():
    from stylize.evaluate import StyleScores, markdown_table

    def terms(total: float) -> dict[str, float]:
        return {"content": total / 2, "style": total / 2, "tv": 0.0, "total": total}

    scores = [StyleScores("good", terms(90.0), {50: terms(120.0), 100: terms(100.0)}),
              StyleScores("weak", terms(250.0), {50: terms(120.0), 100: terms(100.0)})]
    lines = markdown_table(scores).splitlines()
    assert lines[0] == ("| style | network content | network style | network total | L-BFGS 50 | L-BFGS 100 "
                        "| network / L-BFGS 100 |")
    assert lines[2] == "| good | 45 | 45 | 90 | 120 | 100 | 0.90 |"
    assert lines[3] == "| weak | 125 | 125 | 250 | 120 | 100 | 2.50 |"
    without = markdown_table([StyleScores("x", terms(1.0), {3: terms(2.0)})])
    assert "network /" not in without
