"""The add-style / --style-image quality check and the painting it is run on."""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY_STYLES, make_painting, make_photo
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("onnx")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_synthetic_painting_is_fixed_by_its_seed(tmp_path: Path):
    for name, seed in [("a.png", "0"), ("b.png", "0"), ("c.png", "1")]:
        assert _run("benchmarks.synthetic_painting", "-o", str(tmp_path / name), "--size", "96",
                    "--seed", seed).returncode == 0
    a, b, c = (Image.open(tmp_path / n).convert("RGB") for n in ("a.png", "b.png", "c.png"))
    assert a.size == (96, 96)
    assert a.tobytes() == b.tobytes() and a.tobytes() != c.tobytes()
    assert len(a.getcolors(maxcolors=96 * 96) or []) > 100  # strokes in many shades, not a flat fill


def test_rows_are_scored_under_one_loss_with_ratios(tmp_path: Path, tiny_model: Path):
    photos = tmp_path / "photos"
    photos.mkdir()
    make_photo(photos / "a.png", size=(40, 32), seed=1)
    make_photo(photos / "b.png", size=(40, 32), seed=2)
    painting = make_painting(tmp_path / "painting.png", size=(48, 48))
    common = ["benchmarks.new_style_quality", "--painting", str(painting), "--photos", str(photos), "--size", "32",
              "--iterations", "2", "--device", "cpu"]
    result = _run(*common, "--row", f"first={tiny_model}:{TINY_STYLES[0]}",
                  "--row", f"second={tiny_model}:{TINY_STYLES[1]}")
    assert result.returncode == 0, result.stderr
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in result.stdout.splitlines()
            if line.startswith("| ") and not line.startswith("| method")}
    assert list(rows) == ["first", "second", "L-BFGS 2 (Gatys)"]
    assert rows["first"][-1].strip(" |") == "1.00"
    assert "2 photo(s)" in result.stdout

    bad = _run(*common, "--row", f"first={tiny_model}:{TINY_STYLES[0]}", "--reference", "nope")
    assert bad.returncode != 0 and "not a row label" in bad.stderr
