"""`stylize train --lattice-weight`: a penalty on patterns locked to the network's 4x4 cells (a grid in flat skies)."""

import json

import pytest
import torch

from stylize.config import LossWeights, TrainSettings
from stylize.model import checkpoint
from stylize.train.lattice import LatticePenalty, lattice_energy
from stylize.train.loop import train
from test_teacher_anchor import Fixed
from test_train import _settings  # the tiny runs' settings


def _sky(size: int = 96) -> torch.Tensor:
    """A smooth gradient, as a sky: no fine detail at all."""
    ramp = torch.linspace(0.2, 0.8, size)
    return torch.stack([ramp[:, None].expand(size, size), ramp[None, :].expand(size, size), torch.full((size, size), 0.5)])[None]


def _grid(size: int, amplitude: float) -> torch.Tensor:
    """A pattern that repeats every 4 px, the same in every cell."""
    cell = torch.zeros(4, 4)
    cell[0, 1], cell[2, 3] = amplitude, -amplitude
    return cell.repeat(size // 4, size // 4).expand(3, size, size)[None]


def test_a_grid_costs_and_a_smooth_sky_does_not():
    sky = _sky()
    assert float(lattice_energy(sky)[0]) < 1e-6  # (the reflected borders bend the ramp a little)
    grid = float(lattice_energy(sky + _grid(96, 0.05))[0])
    assert grid > 1e-4
    assert float(lattice_energy(sky + _grid(96, 0.1))[0]) == pytest.approx(4 * grid, rel=0.01)  # the amplitude squared


def test_texture_off_the_lattice_costs_far_less_than_a_grid_of_the_same_strength():
    torch.manual_seed(0)
    grid = _grid(160, 0.1)
    strokes = torch.randn(1, 3, 160, 160) * grid.std()  # fine detail as strong as the grid's, at random places
    blobs = torch.nn.functional.interpolate(torch.randn(1, 3, 32, 32), size=160, mode="bicubic") * grid.std()
    for texture in (strokes, blobs):
        assert float(lattice_energy(_sky(160) + texture)[0]) < float(lattice_energy(_sky(160) + grid)[0]) / 30
    shifted = torch.roll(_sky(160) + grid, shifts=(1, 2), dims=(-2, -1))  # a grid is a grid wherever its cells start
    assert float(lattice_energy(shifted)[0]) == pytest.approx(float(lattice_energy(_sky(160) + grid)[0]), rel=0.05)


def test_the_penalty_adds_the_weighted_mean_energy_as_its_own_term():
    output = torch.cat([_sky(), _sky() + _grid(96, 0.1)])
    terms = LatticePenalty(Fixed(), weight=1e3)(output, output, torch.tensor([0, 1]))
    expected = 1e3 * float(lattice_energy(output).mean())
    assert float(terms["lattice"]) == pytest.approx(expected, rel=1e-6) and expected > 0
    assert float(terms["total"]) == pytest.approx(5.0 + expected, rel=1e-6)


def test_a_run_with_the_penalty_logs_it_and_resumes_with_it(tmp_path, style_dir, photo_dir):
    out = tmp_path / "m.safetensors"
    train(style_dir, photo_dir, out, _settings(steps=2, weights=LossWeights(lattice=1e4)), device="cpu")
    assert checkpoint.load(out).training["weights"]["lattice"] == 1e4
    train(style_dir, photo_dir, out, _settings(steps=3), device="cpu", resume=True)  # the weight from the checkpoint
    log = [json.loads(line) for line in out.with_suffix(".log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log] == [1, 2, 3] and all(row["lattice"] > 0 for row in log)
    assert all(row["total"] == pytest.approx(row["content"] + row["style"] + row["tv"] + row["lattice"], rel=1e-5)
               for row in log)


def test_runs_without_the_penalty_keep_their_records_and_cache_keys():
    from stylize.train.evaluate import baseline_key

    assert "lattice" not in LossWeights().to_dict()
    settings = TrainSettings(weights=LossWeights(lattice=1e10))
    assert TrainSettings.from_dict(settings.to_dict()) == settings
    photo, painting = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    assert baseline_key(photo, painting, LossWeights(lattice=1e10), "vgg") == baseline_key(photo, painting, LossWeights(), "vgg")
