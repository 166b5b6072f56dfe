"""benchmarks/gpu_variants.py must run unattended in a GPU window: its dry run, and its time budget."""

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.gpu_variants import COMPILED, EAGER, jobs, winners

ROOT = Path(__file__).resolve().parent.parent


def dry_run(out: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu_variants", str(out), "--dry-run",
                           "--models", "stylize-22-small", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=1200)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_dry_run_times_every_path_a_cpu_runs_and_names_why_the_others_were_not(tmp_path):
    done = dry_run(tmp_path)
    data = json.loads((tmp_path / "variants.json").read_text())
    rows = {(row["batch"], row["path"]): row for row in data["rows"]}
    for batch in (1, 2):
        assert rows[(batch, "baseline (TransformerNet, eager fp32)")]["ratio"] == 1.0
        for spec in EAGER + COMPILED:
            row = rows[(batch, spec)]
            if "graphs" in spec:
                assert "CUDA graphs need a CUDA device" in row["skipped"]
            elif "compile" in spec or "cnorm" in spec:
                assert row["skipped"] == "nothing is compiled in a dry run"
            else:
                assert row["mpix_per_s"] > 0 and row["rounds"] == 2 and row["finite"], row
                assert row["psnr_db"] >= (99 if spec.startswith("fp32") else 40), row
    assert len(data["winners"]) == 2 and "fastest at >= 40 dB" in done.stdout
    best = data["winners"][0]["path"]
    profiles = sorted(path.name for path in tmp_path.glob("profile-*.txt"))
    assert profiles == sorted({f"profile-stylize-22-small-64-b1-{spec}.txt" for spec in ("fp16", best)})
    assert "Self CPU" in (tmp_path / profiles[0]).read_text()
    table = (tmp_path / "variants.md").read_text()
    assert "| fp16 (apply now) |" in table and "the value for stylize.config.CUDA_FAST_PATH" in table


def test_an_exhausted_budget_skips_paths_but_still_writes_the_table(tmp_path):
    dry_run(tmp_path, "--budget-s", "0")
    rows = json.loads((tmp_path / "variants.json").read_text())["rows"]
    timed = [row for row in rows if "ratio" in row]
    assert not timed and all("no time left" in row["skipped"] for row in rows if row["path"] == "fp16")
    assert not list(tmp_path.glob("profile-*"))


def test_the_target_configuration_gets_its_compiled_paths_before_the_others():
    order = [(m, b, specs is COMPILED) for m, _, b, specs in jobs(["big", "small"], [1024], [1, 8], EAGER, COMPILED)]
    assert order[:3] == [("big", 1, False), ("big", 8, False), ("big", 1, True)]
    assert order[-2:] == [("big", 8, True), ("small", 8, True)]


def test_the_winner_is_the_fastest_path_within_the_fidelity_bar():
    common = dict(model="m", size=1024, batch=1)
    rows = [dict(common, path="baseline (TransformerNet, eager fp32)", ratio=1.0),
            dict(common, path="fp16", ratio=1.2, psnr_db=60.0), dict(common, path="bf16+cl", ratio=3.0, psnr_db=39.0),
            dict(common, path="fp16+cl+graphs", ratio=2.5, psnr_db=58.0), dict(common, path="fp16+cl", skipped="x")]
    assert [w["path"] for w in winners(rows)] == ["fp16+cl+graphs"]
