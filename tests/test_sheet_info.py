"""`stylize sheet` (every style on one photo) and `stylize info` (what stylize sees)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from conftest import TINY_STYLES, make_photo
from stylize.cli import app
from stylize.apply.sheet import GAP


def test_sheet_shows_the_photo_and_every_style(tiny_model: Path, tmp_path: Path):
    photo = make_photo(tmp_path / "p.png", (60, 40))
    out = tmp_path / "sheet.png"
    result = CliRunner().invoke(app, ["sheet", str(photo), "-o", str(out), "--model", str(tiny_model),
                                      "--cell", "48", "--columns", "2"])
    assert result.exit_code == 0, result.output
    assert f"{len(TINY_STYLES)} styles" in result.output
    sheet = np.asarray(Image.open(out).convert("RGB"), np.int16)
    assert sheet.shape[1] == GAP + 2 * (48 + GAP)  # two columns of 48 px renderings
    cells = [sheet[GAP + 4:GAP + 28, x + 4:x + 44] for x in (GAP, GAP + 48 + GAP)]
    assert np.abs(cells[0] - cells[1]).mean() > 5  # the photo and a style differ
    again = CliRunner().invoke(app, ["sheet", str(photo), "-o", str(out), "--model", str(tiny_model)])
    assert again.exit_code == 1 and "--overwrite" in again.output
    onto_input = CliRunner().invoke(app, ["sheet", str(photo), "-o", str(photo), "--model", str(tiny_model),
                                          "--overwrite"])
    assert onto_input.exit_code == 1 and "input photo" in onto_input.output


def test_a_sheet_never_writes_through_a_name_that_is_taken(tiny_model: Path, tmp_path: Path, monkeypatch):
    """A dangling link is a name taken, and a file that appears while the sheet renders is kept:
    both used to report "wrote" with nothing written."""
    from stylize.apply import sheet

    photo = make_photo(tmp_path / "p.png", (60, 40))
    link = tmp_path / "link.png"
    link.symlink_to(tmp_path / "nowhere.png")
    result = CliRunner().invoke(app, ["sheet", str(photo), "-o", str(link), "--model", str(tiny_model)])
    assert result.exit_code == 1 and "exists; pass --overwrite" in result.output, result.output
    assert link.is_symlink() and not (tmp_path / "nowhere.png").exists()

    late = tmp_path / "late.png"
    made = sheet.style_sheet

    def other_run_finishes_first(*args, **kwargs):
        late.write_bytes(b"another run's sheet")
        return made(*args, **kwargs)

    monkeypatch.setattr(sheet, "style_sheet", other_run_finishes_first)
    result = CliRunner().invoke(app, ["sheet", str(photo), "-o", str(late), "--model", str(tiny_model)])
    assert result.exit_code == 1 and "appeared while the sheet was made" in result.output, result.output
    assert late.read_bytes() == b"another run's sheet"


def test_info_lists_backends_and_model_files():
    result = CliRunner().invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert "onnxruntime" in result.output and "devices: cpu" in result.output
    facts = json.loads(CliRunner().invoke(app, ["info", "--json"]).output)
    assert facts["apply_backend_on_cpu"] in ("onnx", "torch")
    assert any(m["path"].endswith("stylize-22.safetensors") for m in facts["models"])
