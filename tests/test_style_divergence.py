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

from stylize.model import checkpoint
from stylize.train.finetune import Overrides, add_styles, learn_style
from stylize.config import TrainSettings

pytest.importorskip("onnx")
TINY = dict(steps=6, image_size=32, batch_size=2, style_size=48, workers=0)


def released_model(path: Path) -> Path:
    """A tiny model whose metadata is that of a continued, released run (warm-up from a late step)."""
    from stylize.train.vgg import load_vgg

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


def test_a_released_models_warmup_does_not_make_the_rate_negative(tmp_path, model, styles_cache):
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


# --- the guard: detect, go back, lower the rate; never write or cache a broken style ---

def _photos(tmp_path: Path) -> list[Path]:
    return [make_photo(tmp_path / f"ph{i}.png", (64, 48), seed=i) for i in range(2)]


def test_broken_renderings_are_told_from_pictures():
    from stylize.io.style_cache import broken_rendering

    blue = torch.zeros(1, 3, 16, 16)
    blue[:, 2] = 1.0
    assert "saturated" in broken_rendering(blue)
    assert "flat" in broken_rendering(torch.full((1, 3, 16, 16), 0.4))
    assert "finite" in broken_rendering(torch.full((1, 3, 16, 16), float("nan")))
    assert broken_rendering(torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))) is None
    dark = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 0.05  # a near-black painting's look
    assert broken_rendering(dark) is None


def test_the_guard_keeps_the_last_good_rows_and_refuses_a_jump(model):
    from stylize.train.divergence import RowGuard
    from stylize.train.finetune import train_only_rows_from, with_new_styles
    from stylize.train.loop import TrainingDiverged

    source = checkpoint.load(model)
    net = with_new_styles(source, ["new"]).net
    params = train_only_rows_from(net, 2)
    guard = RowGuard(net, params, 2, [torch.rand(3, 40, 40)])
    guard.check_loss(0, {"total": 100.0})
    with torch.no_grad():
        params[0][2] += 1.0
    guard.check_loss(1, {"total": 150.0})  # noise, not divergence: kept
    kept = params[0][2].clone()
    with torch.no_grad():
        params[0][2] += 5.0
    with pytest.raises(TrainingDiverged, match="over 10x its best 100"):
        guard.check_loss(2, {"total": 5000.0})
    assert guard.restore() == 1 and torch.equal(params[0][2], kept)
    assert all(torch.equal(p[:2], q) for p, q in zip(params, [w for k, w in source.net.state_dict().items()
                                                                 if k.endswith("norm.weight") or k.endswith("norm.bias")]))


def _always_broken(monkeypatch: pytest.MonkeyPatch) -> None:
    from stylize.train import divergence

    monkeypatch.setattr(divergence, "broken_rendering", lambda image: "its rendering is saturated (100% ...)")


def test_a_run_that_cannot_recover_caches_nothing_and_says_so(tmp_path, model, monkeypatch, styles_cache):
    from stylize.train.loop import TrainingDiverged

    _always_broken(monkeypatch)
    with pytest.warns(UserWarning, match="going back to step"), \
            pytest.raises(TrainingDiverged, match="diverged 4 times, the last at learning rate 0.00016") as info:
        learn_style(model, make_painting(tmp_path / "p.png"), _photos(tmp_path), overrides=Overrides(**TINY, lr=0.01),
                    device="cpu")
    assert "\n" not in str(info.value)
    assert not styles_cache.exists() or not list(styles_cache.iterdir())


def test_add_style_that_cannot_recover_writes_no_model(tmp_path, model, photo_dir, monkeypatch):
    from typer.testing import CliRunner

    from stylize.cli import app

    _always_broken(monkeypatch)
    out = tmp_path / "out.safetensors"
    result = CliRunner().invoke(app, ["add-style", "-m", str(model), str(make_painting(tmp_path / "m.png")),
                                      "-c", str(photo_dir), "-o", str(out), "--steps", "4", "--device", "cpu"])
    assert result.exit_code == 1 and "diverged 4 times" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_apply_that_cannot_recover_writes_no_image(tmp_path, model, monkeypatch, styles_cache):
    from typer.testing import CliRunner

    from stylize.train import recipe
    from stylize.cli import app

    _always_broken(monkeypatch)
    monkeypatch.setattr(recipe, "QUICK_CPU", TINY)
    photo = make_photo(tmp_path / "holiday.png", (64, 48))
    result = CliRunner().invoke(app, ["apply", str(photo), "-m", str(model), "--style-image",
                                      str(make_painting(tmp_path / "p.png")), "--device", "cpu"])
    assert result.exit_code == 1 and "diverged 4 times" in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".png") == ["holiday.png", "p.png"]


def test_a_run_that_jumps_goes_back_and_learns_at_a_lower_rate(tmp_path, model, styles_cache, monkeypatch):
    """The loss of step 4 comes out 1000x (once): steps 4.. are redone from the rows after step 3, at 1/4 the rate."""
    from stylize.train.divergence import RowGuard

    check, jumped = RowGuard.check_loss, []

    def jump_once(self, step, losses):
        if step == 3 and not jumped:
            jumped.append(step)
            losses = {**losses, "total": losses["total"] * 1000}
        check(self, step, losses)

    monkeypatch.setattr(RowGuard, "check_loss", jump_once)
    reports = []
    with pytest.warns(UserWarning, match="loss jumped to .* after step 3.*going back to step 2 at learning rate 0.0025"):
        learn_style(model, make_painting(tmp_path / "p.png", seed=3), _photos(tmp_path), device="cpu",
                    overrides=Overrides(**TINY, lr=0.01), on_step=reports.append)
    assert [r.step for r in reports] == [1, 2, 3, 3, 4, 5, 6]
    assert reports[3].lr == pytest.approx(0.25 * reports[2].lr)  # step 3 again, at a quarter of the rate
    assert len(list(styles_cache.iterdir())) == 1


def test_the_cache_is_checked_not_trusted(tmp_path, model, styles_cache):
    """A planted entry (rows that render a flat blue) or one copied under another key is relearned."""
    from safetensors.torch import load_file, save_file

    painting, photos = make_painting(tmp_path / "p.png"), _photos(tmp_path)
    learn_style(model, painting, photos, overrides=Overrides(**TINY), device="cpu")
    [entry] = styles_cache.iterdir()
    rows = load_file(entry)
    key = entry.stem
    blue = {k: (torch.zeros_like(v) if k.endswith("weight") else torch.full_like(v, 50.0)) for k, v in rows.items()}
    save_file(blue, entry, metadata={"format": "stylize-style-rows/2", "key": key})

    def learned_again() -> bool:
        steps = []
        learn_style(model, painting, photos, overrides=Overrides(**TINY), device="cpu", on_step=steps.append)
        return bool(steps)

    assert learned_again()
    assert not learned_again()  # the relearned entry is good and used
    save_file(load_file(entry), entry, metadata={"format": "stylize-style-rows/2", "key": "0" * 64})
    assert learned_again()
