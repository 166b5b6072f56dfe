"""`stylize train --teacher`: a student fine-tuned under the perceptual loss kept near a teacher's renderings."""

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch

from stylize.config import PRESETS, LossWeights
from stylize.errors import StylizeError
from stylize.model import checkpoint
from stylize.model.engine import FastStyleNet
from stylize.model.network import StyleNet
from stylize.model.norm import ConditionalInstanceNorm2d
from stylize.train.anchor import TeacherAnchor
from stylize.train.loop import TrainSettings, train
from stylize.train.loss import distill_loss
from test_train import _settings  # the tiny runs' settings



class Fixed(torch.nn.Module):
    """A stand-in perceptual loss: one constant term, so the anchor's share is plain to see."""

    def forward(self, output, photo, style, per_sample=False):
        return {"content": torch.tensor(2.0), "style": torch.tensor(3.0), "total": torch.tensor(5.0)}


def test_the_anchor_adds_the_weighted_distance_to_the_teachers_rendering():
    teacher = FastStyleNet(_tiny_net(seed=0)).eval()
    photos = torch.rand(2, 3, 24, 24)
    styles = torch.tensor([1, 0])
    rows = torch.tensor([2, 0])  # the loss's painting i is the networks' style rows[i]
    anchor = TeacherAnchor(Fixed(), teacher, rows, weight=10.0)
    with torch.no_grad():
        target = teacher(photos, rows[styles])
    same = anchor(target, photos, styles)
    assert float(same["teacher"]) == 0 and float(same["total"]) == 5.0  # painting what the teacher paints costs nothing
    assert float(TeacherAnchor(Fixed(), teacher, torch.tensor([0, 1]), weight=10.0)(target, photos, styles)["teacher"]) > 0
    other = torch.rand(2, 3, 24, 24)
    terms = anchor(other, photos, styles)
    expected = 10.0 * float(distill_loss(other, target, 1.0)["loss"])
    assert float(terms["teacher"]) == pytest.approx(expected, rel=1e-6) and expected > 0
    assert float(terms["total"]) == pytest.approx(5.0 + expected, rel=1e-6)


def test_a_run_with_a_teacher_logs_its_term_and_resumes_with_it(tmp_path, style_dir, photo_dir):
    teacher = tmp_path / "teacher.safetensors"
    train(style_dir, photo_dir, teacher, _settings(steps=3), device="cpu")
    out = tmp_path / "student.safetensors"
    anchored = _settings(steps=4, teacher=str(teacher), weights=LossWeights(teacher=50.0))
    train(style_dir, photo_dir, out, anchored, device="cpu")
    assert checkpoint.load(out).training["teacher"] == str(teacher)
    train(style_dir, photo_dir, out, _settings(steps=6), device="cpu", resume=True)  # the teacher from the checkpoint
    log = [json.loads(line) for line in out.with_suffix(".log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log] == [1, 2, 3, 4, 5, 6]
    assert all(row["teacher"] > 0 for row in log)
    assert all(row["total"] == pytest.approx(row["content"] + row["style"] + row["tv"] + row["teacher"], rel=1e-5)
               for row in log)


def test_a_teacher_needs_a_weight_the_same_styles_and_a_file(tmp_path, style_dir, photo_dir):
    teacher = tmp_path / "teacher.safetensors"
    train(style_dir, photo_dir, teacher, _settings(steps=2), device="cpu")
    out = tmp_path / "student.safetensors"
    with pytest.raises(StylizeError, match="--teacher-weight needs --teacher"):
        train(style_dir, photo_dir, out, _settings(steps=2, weights=LossWeights(teacher=1.0)), device="cpu")
    with pytest.raises(StylizeError, match="--teacher needs a --teacher-weight"):
        train(style_dir, photo_dir, out, _settings(steps=2, teacher=str(teacher)), device="cpu")
    with pytest.raises(StylizeError, match="is not a model file"):
        train(style_dir, photo_dir, out, _settings(steps=2, teacher=str(tmp_path),
                                                   weights=LossWeights(teacher=1.0)), device="cpu")
    other = tmp_path / "other_styles"
    other.mkdir()
    shutil.copy(next(style_dir.iterdir()), other / "dots.png")
    with pytest.raises(StylizeError, match="--teacher: .* does not hold this folder's styles"):
        train(other, photo_dir, out, _settings(steps=2, teacher=str(teacher), weights=LossWeights(teacher=1.0)),
              device="cpu")
    assert not out.exists()


def _tiny_net(seed: int) -> StyleNet:
    torch.manual_seed(seed)
    net = StyleNet(dataclasses.replace(PRESETS["small"], n_styles=3))
    with torch.no_grad():  # rows away from the identity, so the styles differ
        for norm in net.modules():
            if isinstance(norm, ConditionalInstanceNorm2d):
                norm.weight.normal_(1.0, 0.3)
                norm.bias.normal_(0.0, 0.3)
    return net


def test_runs_without_a_teacher_keep_their_records_and_cache_keys():
    """The teacher's fields are stored only when used: the metadata, the learned-style cache keys
    and the L-BFGS baselines kept in models/ of runs without one stay what they were."""
    from stylize.train.evaluate import baseline_key

    assert "teacher" not in TrainSettings().to_dict() and "teacher" not in LossWeights().to_dict()
    anchored = TrainSettings(teacher="t.safetensors", weights=LossWeights(teacher=2e6))
    assert TrainSettings.from_dict(anchored.to_dict()) == anchored
    photo, painting = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    assert baseline_key(photo, painting, LossWeights(teacher=2e6), "vgg") == baseline_key(photo, painting, LossWeights(), "vgg")
