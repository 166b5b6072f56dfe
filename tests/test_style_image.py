"""`learn_style`: any picture as a style, learned on the fly on a frozen network, then cached."""

import time
from pathlib import Path

import pytest
import torch
from conftest import make_painting, make_photo, make_tiny_model

from stylize.model import checkpoint
from stylize.train import finetune, recipe
from stylize.errors import StylizeError
from stylize.train.finetune import Overrides, learn_style
from stylize.model.edits import style_row_keys

pytest.importorskip("onnx")
QUICK = Overrides(steps=3, image_size=32, batch_size=2, style_size=48)
"""Tiny on-the-fly settings (the model has no training metadata, so these override the CPU defaults)."""


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return make_tiny_model(tmp_path / "model.safetensors", ["a", "b"])


@pytest.fixture
def painting(tmp_path: Path) -> Path:
    return make_painting(tmp_path / "hokusai.png", seed=4)


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    return make_photo(tmp_path / "holiday.png", size=(64, 48), seed=9)


def _no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any attempt to learn (which loads the loss network) fail loudly."""
    def refuse(*args, **kwargs):
        raise AssertionError("learn_style started training")

    monkeypatch.setattr(finetune, "load_vgg", refuse)


def test_learns_on_the_photo_then_hits_the_cache(styles_cache, model, painting, photo, photo_dir, monkeypatch):
    source = checkpoint.load(model)
    reports = []
    learned = learn_style(source, painting, [photo], overrides=QUICK, device="cpu", on_step=reports.append)
    assert [r.step for r in reports] == [1, 2, 3]
    assert learned.styles == ["a", "b", "hokusai"] and source.styles == ["a", "b"]
    old, new = source.net.state_dict(), learned.net.state_dict()
    rows = set(style_row_keys(source.net))
    assert all(torch.equal(new[k][:2] if k in rows else new[k], v) for k, v in old.items())
    assert all(not torch.equal(new[k][2], old[k].mean(0)) for k in rows)
    assert all(torch.equal(v, checkpoint.load(model).net.state_dict()[k]) for k, v in old.items())  # untouched
    cached = list(styles_cache.iterdir())
    assert len(cached) == 1 and cached[0].stat().st_size < 20_000  # only the learned rows

    # Second call: same model (now from its file), painting and settings; other photos: no training at all.
    _no_training(monkeypatch)
    start = time.perf_counter()
    again = learn_style(model, painting, photo_dir, overrides=QUICK, device="cpu",
                        on_step=lambda r: pytest.fail("trained again"))
    assert time.perf_counter() - start < 2.0
    assert again.styles == learned.styles
    assert all(torch.equal(v, again.net.state_dict()[k]) for k, v in new.items())

    # --save-style-to: the result is an ordinary checkpoint.
    saved = Path(styles_cache.parent / "with-hokusai.safetensors")
    checkpoint.save(saved, again)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(checkpoint.load(saved).net(x, 2), learned.net(x, 2))


def test_other_settings_learn_again_and_a_bad_cache_is_relearned(styles_cache, model, painting, photo):
    learn_style(model, painting, [photo], overrides=QUICK, device="cpu")
    steps = []
    learn_style(model, painting, [photo], overrides=Overrides(**{**QUICK.__dict__, "steps": 2}), device="cpu",
                on_step=lambda r: steps.append(r.step))
    assert steps == [1, 2] and len(list(styles_cache.iterdir())) == 2
    for entry in styles_cache.iterdir():
        entry.write_bytes(b"junk")
    steps.clear()
    relearned = learn_style(model, painting, [photo], overrides=QUICK, device="cpu",
                            on_step=lambda r: steps.append(r.step))
    assert steps == [1, 2, 3] and relearned.styles[-1] == "hokusai"


def test_ctrl_c_caches_nothing(styles_cache, model, painting, photo):
    def interrupt(report):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        learn_style(model, painting, [photo], overrides=QUICK, device="cpu", on_step=interrupt)
    assert not styles_cache.exists() or not list(styles_cache.iterdir())


def test_names_default_to_the_stem_made_unique(styles_cache, model, photo, tmp_path):
    clash = make_painting(tmp_path / "A.png", seed=1)
    assert learn_style(model, clash, [photo], overrides=QUICK, device="cpu").styles == ["a", "b", "A_2"]
    assert learn_style(model, clash, [photo], name="dusk", overrides=QUICK, device="cpu").styles[-1] == "dusk"
    with pytest.raises(StylizeError, match="already in"):
        learn_style(model, clash, [photo], name="b", overrides=QUICK, device="cpu")


@pytest.mark.parametrize("setup, photos, message", [
    (lambda d: (d / "empty.jpg").write_bytes(b""), None, "empty.jpg: file is empty"),
    (lambda d: (d / "fake.jpg").write_text("<html>"), None, "fake.jpg: not a readable image"),
    (lambda d: (d / "folder.jpg").mkdir(), None, "folder.jpg: is a directory"),
    (lambda d: None, None, "missing.jpg: no such file"),
    (lambda d: make_painting(d / "ok.png"), [], "no content photos given"),
    (lambda d: make_painting(d / "ok.png"), ["gone.jpg"], "content photo gone.jpg: no such file"),
])
def test_bad_inputs_are_one_line_errors_before_any_training(styles_cache, model, photo, tmp_path, monkeypatch,
                                                            setup, photos, message):
    setup(tmp_path)
    image = next((p for p in tmp_path.iterdir() if p.suffix in (".png", ".jpg") and p != photo),
                 tmp_path / "missing.jpg")
    _no_training(monkeypatch)
    with pytest.raises(StylizeError, match=message) as info:
        learn_style(model, image, [photo] if photos is None else photos, overrides=QUICK, device="cpu")
    assert "\n" not in str(info.value)


def test_photos_to_learn_on_can_be_files_and_folders(photo, photo_dir):
    from stylize.train.data import photo_files

    assert photo_files([photo_dir, photo]) == [*sorted(photo_dir.iterdir()), photo]
    assert photo_files(photo_dir) == sorted(photo_dir.iterdir())


def test_cli_apply_with_a_style_image(styles_cache, model, painting, photo, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from stylize.cli import app

    monkeypatch.setattr(recipe, "QUICK_CPU", dict(steps=2, image_size=32, batch_size=2, style_size=48, workers=0))
    saved = tmp_path / "with-hokusai.safetensors"
    args = ["apply", str(photo), "--model", str(model), "--style-image", str(painting), "--device", "cpu"]
    result = CliRunner().invoke(app, [*args, "--save-style-to", str(saved)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "holiday-hokusai.png").is_file() and checkpoint.load(saved).styles == ["a", "b", "hokusai"]
    _no_training(monkeypatch)  # the second time the style comes from the cache
    result = CliRunner().invoke(app, [*args, "--style", "hokusai:1,a:1", "-o", str(tmp_path / "mix.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "mix.png").is_file()
    for extra, message in [(["--save-style-to", str(model)], "is the input model"),
                           (["--style-image", str(tmp_path / "none.jpg")], "none.jpg: no such file")]:
        result = CliRunner().invoke(app, [*args, *extra, "-o", str(tmp_path / "x.png")])
        assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(app, ["apply", str(photo), "--model", str(model), "--style", "a",
                                      "--save-style-to", str(saved)])
    assert result.exit_code == 1 and "go with --style-image" in result.output


def test_ranks_learn_together_unless_every_rank_has_the_style_cached(styles_cache, model, painting, photo,
                                                                      monkeypatch):
    """Under torchrun a rank whose node has the cache must not skip the training the others start."""
    learn_style(model, painting, [photo], overrides=QUICK, device="cpu")  # now cached here
    asked = []

    def another_rank_lacks_it(flag, device):
        asked.append(flag)
        return False

    monkeypatch.setattr(finetune, "everyone", another_rank_lacks_it)
    steps = []
    learn_style(model, painting, [photo], overrides=QUICK, device="cpu", on_step=lambda r: steps.append(r.step))
    assert asked == [True] and steps == [1, 2, 3]  # it had the rows, and learned with the others all the same


def test_cpu_recipe_fits_the_first_call_and_learns_to_its_last_step():
    """The CPU recipe (``QUICK_CPU``): no more crop pixels than the 60 steps of 192 px crops timed at under a
    minute for the first call (``benchmarks/README.md``), and a rate that still moves the rows at the end."""
    from stylize.config import TrainSettings

    # What stylize-22 stores: a released run's warm-up and a decay to 1/100 over 37k steps.
    stored = TrainSettings(final_lr_fraction=0.01, warmup_steps=100, warmup_from=30922, image_size=256).to_dict()
    cpu = recipe.quick_settings(stored, "cpu")
    assert cpu.steps * cpu.batch_size * cpu.image_size ** 2 <= 60 * 1 * 192 ** 2
    assert cpu.image_size < 192 and cpu.steps > 60  # more, smaller steps: the held-out paintings were step-bound
    rates = [cpu.lr_at(step) for step in range(cpu.steps)]
    assert rates[0] == cpu.lr and all(b <= a for a, b in zip(rates, rates[1:]))  # no warm-up carried over
    assert rates[-1] >= 0.19 * cpu.lr  # a fifth at the last step, not the model's stored 1/100
    # --style-steps N stretches the same decay over N steps.
    longer = recipe.quick_settings(stored, "cpu", Overrides(steps=4 * cpu.steps))
    assert longer.lr_at(2 * cpu.steps) > longer.lr_at(4 * cpu.steps - 1) >= 0.19 * cpu.lr
    # A GPU affords many steps: its recipe keeps the model's own decay.
    assert recipe.quick_settings(stored, "cuda").final_lr_fraction == 0.01
