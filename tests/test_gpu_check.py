"""benchmarks/gpu_check.py must keep working between GPU sessions: its dry run, on the CPU."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("onnx")  # the style-image step needs the default loss network


def test_dry_run_runs_every_step_and_writes_its_files(tmp_path):
    out = tmp_path / "check"
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", str(out), "--dry-run"], cwd=ROOT,
                          capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stdout + done.stderr
    steps = ["environment", "variants", "tests", "speed", "apply", "style_image", "memory"]
    for step in steps:
        result = json.loads((out / f"{step}.json").read_text())
        assert result["status"] == "ok", (step, result)
        assert f"{step}: ok in " in done.stdout
    apply = json.loads((out / "apply.json").read_text())
    assert apply["written"] == 3 and all(apply["stages"][k] > 0 for k in ("decode_s", "network_s", "encode_s"))
    assert len(list((out / "apply-styled").glob("*.jpg"))) == 3
    assert "paths timed; fastest within the bar: stylize-22 64 px b1:" in \
        json.loads((out / "variants.json").read_text())["summary"]
    assert (out / "variants" / "variants.md").exists()
    speed = json.loads((out / "speed.json").read_text())
    assert speed["report"]["inference"] and speed["report"]["training"]
    style = json.loads((out / "style_image.json").read_text())
    assert style["steps"] == 2 and style["cache_hit_s"] < style["learn_s"]
    summary = (out / "summary.md").read_text().splitlines()
    assert [line.split(":")[0] for line in summary if line.startswith("- ")] == [f"- {step}" for step in steps]
