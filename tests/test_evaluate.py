"""The quality evaluation: network loss beside the Gatys L-BFGS baseline, its cache, comparisons."""

import dataclasses
import importlib.util

import pytest
import torch
from conftest import TINY_STYLES, make_painting, make_photo, make_tiny_model
from torch import nn
from typer.testing import CliRunner

from stylize.model import checkpoint
from stylize.train import evaluate as ev
from stylize.cli import app
from stylize.io.images import read_image
from stylize.train.loss import LossWeights, PerceptualLoss

needs_vgg = pytest.mark.skipif(importlib.util.find_spec("onnx") is None, reason="the VGG16 loss network needs onnx")


class StubFeatures(nn.Module):
    """Four small fixed random convolutions standing in for VGG16: the same interface, milliseconds.

    Like the Caffe VGG16, it sees pixels in 0..255, which puts the loss far above L-BFGS's
    stopping tolerances."""

    def __init__(self, network_id: str = "stub/1") -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layers = nn.ModuleList([nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 8, 3, stride=2, padding=1),
                                     nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.Conv2d(8, 8, 3, padding=1)])
        self.requires_grad_(False)
        self.network_id = network_id

    def forward(self, images: torch.Tensor, taps: int = 4) -> list[torch.Tensor]:
        outputs, x = [], images * 255
        for layer in self.layers[:taps]:
            x = torch.relu(layer(x))
            outputs.append(x)
        return outputs


@pytest.fixture
def paintings(tmp_path) -> dict[str, torch.Tensor]:
    """Paintings for two of the tiny model's three styles, named as its styles."""
    return {name: read_image(make_painting(tmp_path / "paintings" / f"{name}.png", seed=i)).rgb
            for i, name in enumerate(TINY_STYLES[::2])}


@pytest.fixture
def gatys_calls(monkeypatch) -> list[list[int]]:
    """The budgets of every L-BFGS run from now on."""
    calls, real = [], ev.gatys

    def counting(loss, photo, style, budgets):
        calls.append(list(budgets))
        return real(loss, photo, style, budgets)

    monkeypatch.setattr(ev, "gatys", counting)
    return calls


def run(model, paintings, photo_dir, cache, budgets=(1, 3), **kwargs) -> list[ev.StyleScores]:
    return ev.evaluate(checkpoint.load(model), paintings, photo_dir, weights=kwargs.pop("weights", LossWeights()),
                       vgg=kwargs.pop("vgg", StubFeatures()), size=32, budgets=budgets, limit=1, cache=cache, **kwargs)


def test_the_baseline_is_computed_once_per_photo_and_painting_then_read_from_the_cache(
        tiny_model, paintings, photo_dir, tmp_path, gatys_calls):
    cache = tmp_path / "cache"
    first = run(tiny_model, paintings, photo_dir, cache)
    assert gatys_calls == [[1, 3]] * 2  # 2 styles x 1 photo; one run records both budgets
    assert len(list(cache.iterdir())) == 2
    gatys_calls.clear()
    again = run(tiny_model, paintings, photo_dir, cache)
    assert gatys_calls == [] and [s.baseline for s in again] == [s.baseline for s in first]
    assert [s.network for s in again] == [s.network for s in first]
    assert run(tiny_model, paintings, photo_dir, cache, budgets=(3,))[0].baseline[3] == first[0].baseline[3]
    assert gatys_calls == []  # a smaller set of budgets is served from the cache
    assert first[0].baseline[3]["total"] < first[0].baseline[1]["total"]  # and L-BFGS did make progress
    # A larger budget runs L-BFGS once more, to the new maximum, recording the cached budgets again.
    more = run(tiny_model, paintings, photo_dir, cache, budgets=(1, 5))
    assert gatys_calls == [[1, 3, 5]] * 2 and more[0].baseline[1] == first[0].baseline[1]
    gatys_calls.clear()
    run(tiny_model, paintings, photo_dir, cache, budgets=(1, 3, 5))
    assert gatys_calls == []
    # Without a cache, every evaluation optimizes.
    run(tiny_model, paintings, photo_dir, None)
    assert len(gatys_calls) == 2


def test_other_loss_settings_or_loss_network_miss_the_cache(tiny_model, paintings, photo_dir, tmp_path, gatys_calls):
    cache = tmp_path / "cache"
    base = run(tiny_model, paintings, photo_dir, cache)
    gatys_calls.clear()
    heavier = run(tiny_model, paintings, photo_dir, cache, weights=LossWeights(style=5.0))
    assert len(gatys_calls) == 2 and heavier[0].baseline != base[0].baseline
    gatys_calls.clear()
    run(tiny_model, paintings, photo_dir, cache, vgg=StubFeatures("another/1"))  # same numbers, another id
    assert len(gatys_calls) == 2


def test_the_cache_key_covers_photo_painting_size_loss_and_network():
    torch.manual_seed(0)
    photo, painting, weights = torch.rand(3, 32, 24), torch.rand(3, 40, 40), LossWeights()
    key = ev.baseline_key(photo, painting, weights, "vgg/1")
    assert key == ev.baseline_key(photo.clone(), painting.clone(), LossWeights(), "vgg/1")
    variants = [ev.baseline_key(photo[:, :16, :12], painting, weights, "vgg/1"),
                ev.baseline_key(photo.flip(1), painting, weights, "vgg/1"),
                ev.baseline_key(photo, painting[:, :20], weights, "vgg/1"),
                ev.baseline_key(photo, painting, dataclasses.replace(weights, tv=1.0), "vgg/1"),
                ev.baseline_key(photo, painting, weights, "vgg/2")]
    # Every loss option is in the key (LossWeights.to_dict()), e.g. the content layer and style-layer weights.
    options = {"content_layer": "relu3_3", "style_layers": (0.5, 1.0, 1.0, 2.0)}
    variants += [ev.baseline_key(photo, painting, dataclasses.replace(weights, **{k: v}), "vgg/1")
                 for k, v in options.items()]
    assert len({key, *variants}) == 8


@pytest.mark.parametrize("damage", ["garbage", "nan", "shape"])
def test_an_unusable_cache_file_is_recomputed_not_an_error(tmp_path, damage):
    path = tmp_path / "baseline.safetensors"
    ev.write_baseline(path, {1: {"content": 1.0, "total": 2.0}, 3: {"content": 0.5, "total": 1.0}})
    assert ev.read_baseline(path) == {1: {"content": 1.0, "total": 2.0}, 3: {"content": 0.5, "total": 1.0}}
    if damage == "garbage":
        path.write_bytes(b"not a safetensors file")
    else:
        from stylize.train.cache import write_cached_tensors

        table = torch.tensor([[float("nan"), 2.0], [0.5, 1.0]]) if damage == "nan" else torch.ones(3, 2)
        write_cached_tensors(path, {"terms": table}, {"format": ev._CACHE_FORMAT, "budgets": "[1, 3]",
                                                      "terms": '["content", "total"]'}, "test")
    assert ev.read_baseline(path) == {}


def test_a_previous_checkpoint_is_compared_style_by_style(tiny_model, paintings, photo_dir, tmp_path):
    cache = tmp_path / "cache"
    itself = run(tiny_model, paintings, photo_dir, cache, budgets=(1,), previous=checkpoint.load(tiny_model))
    assert all(s.previous == s.network for s in itself)
    assert ev.summary(itself) == ["network / previous (2 styles): median 1.000, worst 1.000 (starry_night)"]
    other = make_tiny_model(tmp_path / "other.safetensors", styles=["the_scream", "udnie"], seed=1)
    scores = run(tiny_model, paintings, photo_dir, cache, budgets=(1,), previous=checkpoint.load(other))
    assert [s.previous is not None for s in scores] == [False, True]
    table = ev.markdown_table(scores).splitlines()
    assert table[0].endswith("| previous total | network / previous |") and table[2].endswith("| - | - |")
    assert ev.summary(scores)[0].startswith("network / previous (1 styles)")


def terms(total: float) -> dict[str, float]:
    return {"content": total / 2, "style": total / 2, "tv": 0.0, "total": total}


@pytest.mark.parametrize("new_totals, verdict", [((90.0, 100.0), "passes"), ((90.0, 106.0), "fails"),
                                                  ((100.0, 100.0), "fails")])
def test_the_release_rule(new_totals, verdict):
    baseline = {100: terms(100.0)}
    scores = [ev.StyleScores("a", terms(new_totals[0]), baseline, previous=terms(100.0)),
              ev.StyleScores("b", terms(new_totals[1]), baseline, previous=terms(100.0)),
              ev.StyleScores("c", terms(80.0), baseline, previous=terms(80.0))]
    lines = ev.summary(scores)
    assert lines[0].startswith("network / L-BFGS 100: median")
    assert lines[-1].startswith("release rule") and lines[-1].endswith(verdict)


@needs_vgg
def test_gatys_lowers_the_loss_at_every_budget(tmp_path):
    from stylize.train.evaluate import gatys
    from stylize.io.images import read_image
    from stylize.train.vgg import load_vgg

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


def test_gatys_reuses_the_line_search_evaluation_and_keeps_every_iterate(tmp_path):
    """Each step starts where the last line search stopped: that point is not evaluated twice."""
    photo = read_image(make_photo(tmp_path / "photo.png", size=(32, 32), seed=2)).rgb[None]
    painting = read_image(make_painting(tmp_path / "painting.png", size=(32, 32), seed=2)).rgb
    evaluations = []

    class CountedLoss(PerceptualLoss):
        def forward(self, *args):
            evaluations.append(1)
            return super().forward(*args)

    loss = CountedLoss(StubFeatures(), [painting], LossWeights())
    style = torch.zeros(1, dtype=torch.long)
    budgets = [3, 12]
    images = ev.gatys(loss, photo, style, budgets)
    evaluated_by_gatys = len(evaluations)

    # The plain loop: every step evaluates its starting point afresh.
    pixels = photo.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([pixels], lr=1.0, max_iter=1, max_eval=ev.LINE_SEARCH_EVALS,
                                  history_size=ev.HISTORY, line_search_fn="strong_wolfe")
    evaluations.clear()

    def closure():
        optimizer.zero_grad()
        total = loss(pixels.clamp(0, 1), photo, style)["total"]
        total.backward()
        return total

    for iteration in range(1, 13):
        optimizer.step(closure)
        if iteration in budgets:
            assert torch.equal(images[iteration], pixels.detach().clamp(0, 1)), iteration
    assert evaluated_by_gatys == len(evaluations) - 11  # one saved per step after the first


def test_evaluate_command_prints_a_table_and_caches_the_baseline(tiny_model, paintings, photo_dir, tmp_path,
                                                               monkeypatch):
    monkeypatch.setattr("stylize.train.vgg.load_vgg", lambda weights=None, device=None: StubFeatures())
    args = ["evaluate", str(tiny_model), "--styles", str(tmp_path / "paintings"), "--photos", str(photo_dir),
            "--size", "32", "--iterations", "1,3", "--limit", "1", "--device", "cpu",
            "--cache-dir", str(tmp_path / "cache")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "| starry_night |" in result.output and "| the_scream |" in result.output and "L-BFGS 3" in result.output
    assert len(list((tmp_path / "cache").iterdir())) == 2
    compared = CliRunner().invoke(app, [*args, "--compare", str(tiny_model)])
    assert compared.exit_code == 0 and "network / previous (2 styles): median 1.000" in compared.output
    monkeypatch.setenv("STYLIZE_CACHE_DIR", str(tmp_path / "default"))
    assert CliRunner().invoke(app, args[:-2]).exit_code == 0
    assert len(list((tmp_path / "default" / "baselines").iterdir())) == 2
    assert CliRunner().invoke(app, [*args[:-2], "--no-cache", "--iterations", "2"]).exit_code == 0
    assert len(list((tmp_path / "default" / "baselines").iterdir())) == 2
    for bad, message in [("many", "comma-separated integers"), ("0,5", "each budget must be 1 to 10000")]:
        wrong = CliRunner().invoke(app, [*args[:9], bad])
        assert wrong.exit_code == 2 and message in wrong.output and "Traceback" not in wrong.output


def test_the_table_gives_the_verdict_against_100_iterations():
    from stylize.train.evaluate import StyleScores, markdown_table

    scores = [StyleScores("good", terms(90.0), {50: terms(120.0), 100: terms(100.0)}),
              StyleScores("weak", terms(250.0), {50: terms(120.0), 100: terms(100.0)})]
    lines = markdown_table(scores).splitlines()
    assert lines[0] == ("| style | network content | network style | network total | L-BFGS 50 | L-BFGS 100 "
                        "| network / L-BFGS 100 |")
    assert lines[2] == "| good | 45 | 45 | 90 | 120 | 100 | 0.90 |"
    assert lines[3] == "| weak | 125 | 125 | 250 | 120 | 100 | 2.50 |"
    without = markdown_table([StyleScores("x", terms(1.0), {3: terms(2.0)})])
    assert "network /" not in without
