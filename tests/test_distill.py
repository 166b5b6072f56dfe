"""`stylize distill`: a student network trained on a teacher's outputs, resumable, never losing work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import TINY_STYLES, make_photo
from typer.testing import CliRunner

from stylize.model import checkpoint
from stylize.cli import app
from stylize.train.distill import distill, distill_loss
from stylize.errors import StylizeError
from stylize.config import DistillSettings

QUICK = DistillSettings(steps=3, batch_size=2, image_size=32, resize=48, log_every=1, checkpoint_minutes=0)
PREVIEW = torch.rand(3, 24, 32)
"""A small preview photo: the default one (the first content photo at 384 px) costs more than the steps."""


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for seed in range(3):
        make_photo(folder / f"p{seed}.png", size=(64, 56), seed=seed)
    return folder


def test_loss_is_zero_for_the_teachers_own_image_and_sees_strokes():
    torch.manual_seed(0)
    teacher = torch.rand(2, 3, 16, 16)
    assert float(distill_loss(teacher, teacher.clone(), 1.0)["loss"]) == 0
    blurred = torch.nn.functional.avg_pool2d(teacher, 3, 1, 1, count_include_pad=False)
    terms = distill_loss(blurred, teacher, 1.0)
    assert float(terms["gradient"]) > float(terms["pixel"]) > 0  # a blur loses the edges above all


def test_distill_writes_a_resumable_student_with_the_teachers_styles(tiny_model, photos, tmp_path):
    out = tmp_path / "student.safetensors"
    random_stream = torch.random.get_rng_state()
    result = distill(tiny_model, photos, out, QUICK, preview_photo=PREVIEW)
    assert torch.equal(torch.random.get_rng_state(), random_stream)  # the seed stays inside the run
    assert result.step == 3 and not result.interrupted
    student = checkpoint.load(out)
    assert student.styles == TINY_STYLES and student.step == 3 and student.optimizer_state is not None
    assert student.net.config.separable and not student.net.config.full_res  # the fast preset
    assert student.training["distill"]["image_size"] == 32 and student.training["teacher"] == tiny_model.name
    assert student.training["preset"] == "fast" and "weights" in student.training  # evaluated under the teacher's loss
    lines = [json.loads(line) for line in out.with_suffix(".log.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3] and all(line["loss"] > 0 for line in lines)
    assert out.with_suffix(".preview.png").stat().st_size > 0

    with pytest.raises(StylizeError, match="--resume"):
        distill(tiny_model, photos, out, QUICK)
    resumed = distill(tiny_model, photos, out, DistillSettings(steps=5, image_size=64), resume=True,
                      preview_photo=PREVIEW)
    assert resumed.step == 5
    again = checkpoint.load(out)
    assert again.step == 5 and again.training["distill"]["image_size"] == 32  # the run's own settings
    assert [json.loads(line)["step"] for line in out.with_suffix(".log.jsonl").read_text().splitlines()][-1] == 5


def test_the_student_learns_the_teacher(tiny_model, photos, tmp_path):
    """On a fixed photo, a few dozen steps bring the student clearly closer to the teacher than at the start."""
    out = tmp_path / "student.safetensors"
    settings = DistillSettings(steps=40, batch_size=2, image_size=32, resize=32, log_every=1, lr=3e-3)
    distill(tiny_model, [photos / "p0.png"], out, settings, preview_photo=PREVIEW)
    losses = [json.loads(line)["pixel"] for line in out.with_suffix(".log.jsonl").read_text().splitlines()]
    assert sum(losses[-5:]) < 0.8 * sum(losses[:5])


def test_distill_command_and_its_errors(tiny_model, photos, tmp_path):
    runner = CliRunner()
    out = tmp_path / "s.safetensors"
    args = ["distill", str(tiny_model), "-c", str(photos), "-o", str(out), "--steps", "1", "--image-size", "32",
            "--resize", "40", "--batch-size", "1"]
    ok = runner.invoke(app, args)
    assert ok.exit_code == 0 and f"saved {out}" in ok.output
    refused = runner.invoke(app, args)
    assert refused.exit_code == 1 and "--resume" in refused.output
    lean = tmp_path / "lean.safetensors"
    assert runner.invoke(app, ["export", "-m", str(out), "-o", str(lean)]).exit_code == 0
    lean_resumed = runner.invoke(app, [*args[:5], str(lean), *args[6:], "--resume"])
    assert lean_resumed.exit_code == 1 and "optimizer state" in lean_resumed.output
    other = runner.invoke(app, [*args[:5], str(tmp_path / "o.safetensors"), *args[6:], "--preset", "nope"])
    assert other.exit_code == 1 and "unknown preset" in other.output


def test_init_from_starts_a_new_run_from_a_released_student(tiny_model, photos, tmp_path):
    """A lean export (no optimizer state) cannot be resumed, but a new run can start from its weights."""
    first = tmp_path / "first.safetensors"
    distill(tiny_model, photos, first, QUICK, preview_photo=PREVIEW)
    lean = tmp_path / "lean.safetensors"
    checkpoint.save(lean, checkpoint.load(first))  # weights only
    out = tmp_path / "second.safetensors"
    start = checkpoint.load(lean).net.state_dict()
    distill(tiny_model, photos, out, DistillSettings(steps=1, batch_size=2, image_size=32, resize=48, lr=0.0,
                                                      style_lr=0.0, checkpoint_minutes=0),
            init_from=lean, preview_photo=PREVIEW)
    continued = checkpoint.load(out)
    assert continued.step == 1 and continued.optimizer_state is not None
    assert all(torch.equal(continued.net.state_dict()[k].float(), v.float()) for k, v in start.items())  # lr 0 keeps them

    with pytest.raises(StylizeError, match="one of them"):
        distill(tiny_model, photos, out, QUICK, resume=True, init_from=lean)
    with pytest.raises(StylizeError, match="not --preset"):
        distill(tiny_model, photos, tmp_path / "third.safetensors", DistillSettings(preset="small", steps=1),
                init_from=lean)
    with pytest.raises(StylizeError, match="matches no preset"):  # the teacher itself is no student
        distill(tiny_model, photos, tmp_path / "fourth.safetensors", QUICK, init_from=tiny_model)


def test_distill_takes_a_device(tiny_model, photos, tmp_path):
    """``--device`` as train takes it: the run goes where asked, or the command says why it cannot."""
    runner = CliRunner()
    args = ["distill", str(tiny_model), "-c", str(photos), "--steps", "1", "--image-size", "32", "--resize", "40",
            "--batch-size", "1"]
    ok = runner.invoke(app, [*args, "-o", str(tmp_path / "cpu.safetensors"), "--device", "cpu"])
    assert ok.exit_code == 0, ok.output
    if not torch.cuda.is_available():
        refused = runner.invoke(app, [*args, "-o", str(tmp_path / "gpu.safetensors"), "--device", "cuda"])
        assert refused.exit_code != 0 and "Traceback" not in refused.output
        assert len(refused.output.strip().splitlines()) == 1 and not (tmp_path / "gpu.safetensors").exists()
