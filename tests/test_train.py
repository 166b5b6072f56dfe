"""Training end to end on tiny images with the real (Caffe VGG16) loss network."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from stylize.model import checkpoint
from stylize.train.data import ContentPhotos
from stylize.errors import StylizeError
from stylize.train.loop import TrainSettings, TrainingDiverged, train

pytest.importorskip("onnx")

TINY = dict(batch_size=2, image_size=32, style_size=48, preset="small", workers=0, checkpoint_every=5,
            preview_every=10, log_every=1, precision="fp32")


def _settings(**overrides) -> TrainSettings:
    return TrainSettings(**{**TINY, **overrides})


def _fixed_batch_loss(model_path: Path, style_dir: Path, photo_dir: Path) -> float:
    """Loss of a checkpoint on one fixed batch: comparable across checkpoints, unlike per-step losses."""
    from stylize.train.data import load_styles
    from stylize.train.loss import PerceptualLoss
    from stylize.train.vgg import load_vgg

    ckpt = checkpoint.load(model_path)
    _, paintings = load_styles(style_dir, 48)
    loss = PerceptualLoss(load_vgg(), paintings, TrainSettings().weights)
    data = ContentPhotos(photo_dir, image_size=32, batch_size=4, style_pool=2, seed=123)
    images, styles, _ = data[0]
    images = images.float() / 255
    with torch.no_grad():
        return loss(ckpt.net(images, styles), images, styles)["total"].item()


def test_twenty_steps_lower_the_loss_and_write_everything(tmp_path, style_dir, photo_dir):
    out = tmp_path / "m.safetensors"
    random_stream = torch.random.get_rng_state()
    first = train(style_dir, photo_dir, out, _settings(steps=1, lr=0.0), device="cpu")
    assert torch.equal(torch.random.get_rng_state(), random_stream)  # the seed stays inside the run
    before = _fixed_batch_loss(out, style_dir, photo_dir)
    out.unlink()
    out.with_suffix(".log.jsonl").unlink()
    shutil.rmtree(out.with_suffix(".previews"))
    reports = []
    result = train(style_dir, photo_dir, out, _settings(steps=20, lr=1e-2), device="cpu", on_step=reports.append)
    after = _fixed_batch_loss(out, style_dir, photo_dir)
    assert first.step == 1 and result.step == 20 and not result.interrupted
    assert after < 0.8 * before, (before, after)
    assert [r.step for r in reports] == list(range(1, 21))
    assert {"content", "style", "tv", "total"} <= reports[-1].losses.keys()
    log = [json.loads(line) for line in out.with_suffix(".log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log] == list(range(1, 21))
    # Every line has each style's own loss for the samples of that step (batch of 2: one or both styles).
    for row in log:
        assert row["styles"] and set(row["styles"]) <= {"stripes", "waves"}
        if len(row["styles"]) == 1:
            assert row["styles"][next(iter(row["styles"]))] == pytest.approx(row["style"], rel=1e-4)
    assert any(len(row["styles"]) == 2 for row in log)
    previews = sorted(p.name for p in out.with_suffix(".previews").iterdir())
    assert previews == ["step_0000010.jpg", "step_0000020.jpg"]
    ckpt = checkpoint.load(out)
    assert ckpt.styles == ["stripes", "waves"] and ckpt.step == 20
    assert ckpt.loss_network.startswith("vgg16") and ckpt.training["batch_size"] == 2
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert (ckpt.net(x, 0) - ckpt.net(x, 1)).abs().mean() > 1e-3


def test_resume_continues_step_count_and_matches_uninterrupted_run(tmp_path, style_dir, photo_dir):
    straight = tmp_path / "straight.safetensors"
    train(style_dir, photo_dir, straight, _settings(steps=6), device="cpu")
    resumed = tmp_path / "resumed.safetensors"
    train(style_dir, photo_dir, resumed, _settings(steps=3), device="cpu")
    assert checkpoint.load(resumed).step == 3
    steps = []
    result = train(style_dir, photo_dir, resumed, _settings(steps=6), device="cpu", resume=True,
                   on_step=lambda r: steps.append(r.step))
    assert steps == [4, 5, 6] and result.step == 6
    a, b = checkpoint.load(straight).net.state_dict(), checkpoint.load(resumed).net.state_dict()
    # Same data sequence, same optimizer state: only the cosine schedule's total differs (3 vs 6 steps).
    assert all(torch.allclose(a[k], b[k], atol=5e-3) for k in a)


def test_resume_trains_on_the_stored_painting_size_whatever_this_call_says(tmp_path, style_dir, photo_dir):
    """A resumed run keeps its stored settings, the paintings' size included.

    It once loaded the paintings at this call's --style-size (the CLI default, 512) while
    keeping 256 in its settings: at the other scale the Gram targets differ, and six styles
    of a GPU run fell apart while its training loss went on falling.
    """
    first = tmp_path / "first.safetensors"
    train(style_dir, photo_dir, first, _settings(steps=3), device="cpu")
    same, other = tmp_path / "same.safetensors", tmp_path / "other.safetensors"
    shutil.copy(first, same)
    shutil.copy(first, other)
    train(style_dir, photo_dir, same, _settings(steps=5), device="cpu", resume=True)
    train(style_dir, photo_dir, other, _settings(steps=5, style_size=96), device="cpu", resume=True)
    a, b = checkpoint.load(same), checkpoint.load(other)
    assert b.training["style_size"] == 48
    assert all(torch.equal(a.net.state_dict()[k], b.net.state_dict()[k]) for k in a.net.state_dict())


def test_resume_refuses_other_styles_and_finished_runs(tmp_path, style_dir, photo_dir):
    out = tmp_path / "m.safetensors"
    train(style_dir, photo_dir, out, _settings(steps=2), device="cpu")
    with pytest.raises(StylizeError, match="already at step 2"):
        train(style_dir, photo_dir, out, _settings(steps=2), device="cpu", resume=True)
    (style_dir / "waves.png").rename(style_dir / "other.png")
    with pytest.raises(StylizeError, match="trained on styles"):
        train(style_dir, photo_dir, out, _settings(steps=4), device="cpu", resume=True)


def test_ctrl_c_saves_and_returns(tmp_path, style_dir, photo_dir):
    out = tmp_path / "m.safetensors"

    def interrupt(report):
        if report.step == 3:
            raise KeyboardInterrupt

    result = train(style_dir, photo_dir, out, _settings(steps=10), device="cpu", on_step=interrupt)
    assert result.interrupted and result.step == 3
    assert checkpoint.load(out).step == 3


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, style_dir, photo_dir, monkeypatch):
    out = tmp_path / "m.safetensors"
    from stylize.train import loss as loss_module

    real_forward = loss_module.PerceptualLoss.forward

    def poisoned(self, output, photo, style, per_sample=False):
        terms = real_forward(self, output, photo, style, per_sample)
        poisoned.calls += 1
        if poisoned.calls == 7:
            terms["total"] = terms["total"] * float("nan")
        return terms

    poisoned.calls = 0
    monkeypatch.setattr(loss_module.PerceptualLoss, "forward", poisoned)
    with pytest.raises(TrainingDiverged, match="at step 7") as info:
        train(style_dir, photo_dir, out, _settings(steps=10), device="cpu")
    assert "\n" not in str(info.value)
    kept = checkpoint.load(out)
    assert kept.step == 5
    assert all(torch.isfinite(p).all() for p in kept.net.parameters())


@pytest.mark.parametrize("setup, message", [
    (lambda d: d.mkdir(), "has no images"),
    (lambda d: (d.mkdir(), (d / "notes.txt").write_text("hi")), "has no images"),
    (lambda d: (d.mkdir(), (d / "fake.jpg").write_text("not a jpeg")), "fake.jpg"),
    (lambda d: None, "does not exist"),
])
def test_bad_style_folder_errors(tmp_path, photo_dir, setup, message):
    styles = tmp_path / "bad-styles"
    setup(styles)
    with pytest.raises(StylizeError, match=message):
        train(styles, photo_dir, tmp_path / "m.safetensors", _settings(steps=1), device="cpu")


def test_bad_content_folder_errors(tmp_path, style_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(StylizeError, match="content folder .* has no images"):
        train(style_dir, empty, tmp_path / "m.safetensors", _settings(steps=1), device="cpu")
    with pytest.raises(StylizeError, match="does not exist"):
        train(style_dir, tmp_path / "nope", tmp_path / "m.safetensors", _settings(steps=1), device="cpu")


def test_batch_plan_is_deterministic_and_rank_slices_partition_it(photo_dir):
    one = ContentPhotos(photo_dir, image_size=32, batch_size=4, style_pool=3, seed=5)
    halves = [ContentPhotos(photo_dir, image_size=32, batch_size=4, style_pool=3, seed=5, rank=r, world_size=2)
              for r in range(2)]
    images, styles, _ = one[3]
    parts = [h[3] for h in halves]
    assert torch.equal(torch.cat([p[0] for p in parts]), images)
    assert torch.equal(torch.cat([p[1] for p in parts]), styles)
    assert not torch.equal(one[4][0], images)


def test_flat_areas_flatten_the_planned_share_of_the_crops(photo_dir):
    """``flat_areas`` changes only the crops its plan picks, each in one region left with no variation
    (one colour, or clipped white), and no other draw of the plan."""
    plain = ContentPhotos(photo_dir, image_size=32, batch_size=8, style_pool=3, seed=5)
    flat = ContentPhotos(photo_dir, image_size=32, batch_size=8, style_pool=3, seed=5, flat_areas=0.5)
    plan = flat.plan(3)
    (before, styles, _), (after, flat_styles, _) = plain[3], flat[3]
    assert torch.equal(styles, flat_styles) and 0 < int((plan.flats[:, 0] < 0.5).sum()) < 8
    for i, picked in enumerate(plan.flats[:, 0] < 0.5):
        changed = (after[i] != before[i]).any(0)
        assert bool(changed.any()) == bool(picked)
        if picked:  # the changed pixels lie in one region of a single colour
            rows, cols = changed.nonzero(as_tuple=True)
            region = after[i][:, int(rows.min()):int(rows.max()) + 1, int(cols.min()):int(cols.max()) + 1]
            assert region.float().std((1, 2)).max() == 0 and region.shape[-1] >= 32 * 0.2 - 1


def test_flatten_fills_a_region_with_its_mean_colour_or_white():
    from stylize.train.data import flatten

    image = torch.arange(3 * 20 * 20, dtype=torch.int64).reshape(3, 20, 20).remainder(251).to(torch.uint8)
    mean_kind = flatten(image, torch.tensor([0.0, 0.2, 0.0, 0.0, 0.0, 0.0]))  # 4x4 at the top left
    assert torch.equal(mean_kind[:, 4:], image[:, 4:]) and torch.equal(mean_kind[:, :, 4:], image[:, :, 4:])
    assert torch.equal(mean_kind[:, :4, :4], image[:, :4, :4].float().mean((1, 2), keepdim=True).round()
                       .to(torch.uint8).expand(3, 4, 4))
    clipped = flatten(image, torch.tensor([0.0, 0.7, 0.99, 0.99, 0.99, 0.99]))  # 11x11 at the bottom right
    assert (clipped[:, -11:, -11:] == 255).all() and torch.equal(clipped[:, :9], image[:, :9])


def test_bf16_training_computes_the_loss_of_fp32_and_learns(tmp_path, style_dir, photo_dir):
    first = {}
    for name in ("fp32", "bf16"):  # same seed, same first batch: the first loss differs only by rounding
        out = tmp_path / f"{name}.safetensors"
        first[name] = train(style_dir, photo_dir, out, _settings(steps=1, lr=0.0, precision=name),
                            device="cpu").losses["total"]
        assert checkpoint.load(out).training["precision"] == name
    assert first["bf16"] == pytest.approx(first["fp32"], rel=0.03)
    before = _fixed_batch_loss(tmp_path / "bf16.safetensors", style_dir, photo_dir)
    out = tmp_path / "bf16-trained.safetensors"
    train(style_dir, photo_dir, out, _settings(steps=20, lr=1e-2, precision="bf16"), device="cpu")
    # It learns, if more slowly than fp32 (which the 20-step test holds to x0.8): on a CPU with
    # native BF16 kernels (AVX-512 BF16) these 20 steps reached x0.89 (2026-12-04).
    assert _fixed_batch_loss(out, style_dir, photo_dir) < 0.95 * before


def test_init_from_a_lean_checkpoint_continues_its_weights_and_step(tmp_path, style_dir, photo_dir):
    first = tmp_path / "first.safetensors"
    train(style_dir, photo_dir, first, _settings(steps=4, lr=1e-2), device="cpu")
    lean = tmp_path / "lean.safetensors"
    released = checkpoint.load(first)
    released.work_sizes = {released.styles[0]: 512}
    checkpoint.save(lean, released)  # no optimizer state: what `stylize export` ships
    assert checkpoint.load(lean).optimizer_state is None
    with pytest.raises(StylizeError, match="no optimizer state"):
        train(style_dir, photo_dir, tmp_path / "lean.safetensors", _settings(steps=8), device="cpu", resume=True)

    out = tmp_path / "next.safetensors"
    # --preset is this call's default (johnson), the weights are small: the record says what they are.
    settings = _settings(steps=8, lr=0.0, warmup_steps=3, preset="johnson")
    result = train(style_dir, photo_dir, out, settings, device="cpu", init_from=lean)
    assert result.step == 8
    continued = checkpoint.load(out)
    assert continued.step == 8 and continued.optimizer_state is not None
    assert continued.training["warmup_from"] == 4 and continued.training["preset"] == "small"
    assert continued.work_sizes == released.work_sizes  # a continued release keeps its styles' stroke sizes
    for key, value in released.net.state_dict().items():  # lr 0: the weights are carried over untouched
        assert torch.equal(continued.net.state_dict()[key], value), key
    log = [json.loads(line) for line in out.with_suffix(".log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log] == [5, 6, 7, 8]


def test_init_from_needs_the_same_styles_and_steps_left(tmp_path, style_dir, photo_dir):
    first = tmp_path / "first.safetensors"
    train(style_dir, photo_dir, first, _settings(steps=3), device="cpu")
    with pytest.raises(StylizeError, match="already at step 3"):
        train(style_dir, photo_dir, tmp_path / "b.safetensors", _settings(steps=3), device="cpu", init_from=first)
    other = tmp_path / "other_styles"
    other.mkdir()
    shutil.copy(next(style_dir.iterdir()), other / "dots.png")
    with pytest.raises(StylizeError, match="does not hold this folder's styles"):
        train(other, photo_dir, tmp_path / "c.safetensors", _settings(steps=6), device="cpu", init_from=first)
    with pytest.raises(StylizeError, match="exclude each other"):
        train(style_dir, photo_dir, first, _settings(steps=6), device="cpu", init_from=first, resume=True)


def test_warmup_ramps_the_learning_rate_from_where_the_optimizer_started():
    s = TrainSettings(steps=100, lr=1.0, warmup_steps=4, warmup_from=10)
    plain = TrainSettings(steps=100, lr=1.0)
    assert [round(s.lr_at(step) / plain.lr_at(step), 6) for step in range(10, 16)] == [0.25, 0.5, 0.75, 1, 1, 1]


def test_time_limit_stops_saves_and_resumes(tmp_path, style_dir, photo_dir):
    out = tmp_path / "m.safetensors"
    result = train(style_dir, photo_dir, out, _settings(steps=50), device="cpu", time_limit=0.0)
    assert result.out_of_time and not result.interrupted and result.step == 1
    assert checkpoint.load(out).step == 1
    again = train(style_dir, photo_dir, out, _settings(steps=3), device="cpu", resume=True)
    assert again.step == 3 and not again.out_of_time


def test_snapshots_keep_lean_models_of_earlier_steps(tmp_path, style_dir, photo_dir):
    out = tmp_path / "m.safetensors"
    train(style_dir, photo_dir, out, _settings(steps=4, snapshot_every=2), device="cpu")
    snapshots = sorted((tmp_path / "m.snapshots").iterdir())
    assert [p.name for p in snapshots] == ["step_0000002.safetensors", "step_0000004.safetensors"]
    early, final = checkpoint.load(snapshots[0]), checkpoint.load(out)
    assert early.step == 2 and early.optimizer_state is None and checkpoint.stores_half(snapshots[0])
    assert early.styles == final.styles and early.training["snapshot_every"] == 2
    last = checkpoint.load(snapshots[1]).net.state_dict()
    for name, tensor in final.net.state_dict().items():  # the last snapshot is the final weights, in fp16
        assert torch.allclose(last[name], tensor, atol=1e-2, rtol=1e-2), name
    # A resumed run keeps its cadence (whatever this call's settings say), or takes a new one if given.
    train(style_dir, photo_dir, out, _settings(steps=6, snapshot_every=0), device="cpu", resume=True)
    assert sorted(p.name for p in (tmp_path / "m.snapshots").iterdir())[-1] == "step_0000006.safetensors"
    train(style_dir, photo_dir, out, _settings(steps=9), device="cpu", resume=True, resume_snapshot_every=3)
    assert sorted(p.name for p in (tmp_path / "m.snapshots").iterdir())[-1] == "step_0000009.safetensors"
    assert checkpoint.load(out).training["snapshot_every"] == 3
