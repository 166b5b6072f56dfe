"""The scripts that make the model card's loss curve and the README's gallery."""

import json
import subprocess
import sys
from pathlib import Path

from conftest import TINY_STYLES, make_photo
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> None:
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True, capture_output=True, timeout=300)


def test_loss_curve_draws_a_png(tmp_path: Path):
    log = tmp_path / "run.log.jsonl"
    records = [{"step": s, "lr": 1e-3, "content": 2e5 - 10 * s, "style": 1e6 / (1 + s), "tv": 0.0,
                "total": 2e5 - 10 * s + 1e6 / (1 + s)} for s in range(10, 1001, 10)]
    log.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    out = tmp_path / "loss.png"
    _run("models/loss_curve.py", str(log), "-o", str(out))
    image = Image.open(out)
    assert image.size == (900, 500)
    # The curves are drawn in their colours (total black, content blue, style red).
    colours = {c for _, c in image.getcolors(maxcolors=100_000)}
    assert {(20, 20, 20), (31, 119, 180), (214, 39, 40)} <= colours


def test_loss_curve_shows_a_style_that_falls_apart_while_the_mean_falls(tmp_path: Path):
    log = tmp_path / "run.log.jsonl"
    records = []
    for s in range(10, 1001, 10):
        styles = {f"style{i}": 1e5 * (1 - s / 2000) for i in range(10)}
        styles["udnie"] = 1e5 * (1 + s / 500)
        records.append({"step": s, "lr": 1e-3, "content": 1e5, "style": sum(styles.values()) / 11, "tv": 0.0,
                        "total": 1e5 + sum(styles.values()) / 11, "styles": styles})
    log.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    out = tmp_path / "loss.png"
    _run("models/loss_curve.py", str(log), "-o", str(out))
    image = Image.open(out).convert("RGB")
    assert image.size == (900, 900)
    panel = image.crop((0, 500, 900, 900))
    red = [(x, y) for x in range(panel.width) for y in range(panel.height) if panel.getpixel((x, y)) == (214, 39, 40)]
    # Only the rising style is drawn red, and it ends at the top of the panel, near x3.
    assert red and min(y for _, y in red) < 60


def test_gallery_sheet_has_a_row_per_style_and_full_size_results(tmp_path: Path, tiny_model: Path):
    photos = tmp_path / "photos"
    make_photo(photos / "chelsea.png", size=(60, 40), seed=1)
    make_photo(photos / "coffee.png", size=(40, 60), seed=2)
    out = tmp_path / "gallery"
    _run("examples/gallery.py", "--model", str(tiny_model), "--photos", str(photos), "--out", str(out),
         "--cell", "32", "--sheet-size", "64", "--full-size", "48")
    sheet = Image.open(out / "contact-sheet.jpg")
    assert sheet.height == (len(TINY_STYLES) + 1) * (32 + 4)
    # Label column, then the two thumbnails (48 and 21 px wide at 32 px high) with their gaps.
    assert sheet.width == 48 + (48 + 4) + (21 + 4)
    full = {p.name: Image.open(p).size for p in out.glob("*.jpg") if p.name != "contact-sheet.jpg"}
    assert full == {"chelsea-starry_night.jpg": (48, 32), "coffee-great_wave.jpg": (32, 48)}


def test_grid_measure_tells_a_grid_from_strokes():
    """The card's grid measure: a faint period-4 pattern over random strokes scores far above the strokes alone."""
    import numpy as np

    sys.path.insert(0, str(ROOT / "models"))
    try:
        from grid_measure import grid_share
    finally:
        sys.path.remove(str(ROOT / "models"))
    rng = np.random.default_rng(0)
    strokes = 128 + 20 * rng.standard_normal((192, 256))
    grid = 6 * np.sin(np.arange(256) * np.pi / 2)[None, :]
    as_image = lambda a: Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).convert("RGB")
    plain, gridded = grid_share(as_image(strokes)), grid_share(as_image(strokes + grid))
    assert plain < 0.01 and gridded > 10 * plain
