"""models/gpu_window.sh must work the day a GPU is lent: its dry run, on the CPU, on made-up data."""

import dataclasses
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest import make_photo
from stylize.config import PRESETS
from stylize.model.checkpoint import read_metadata

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("onnx")  # training and evaluation need the default loss network


def _styles_of(model: Path) -> list[str]:
    done = subprocess.run(["python3", "-m", "stylize", "styles", "-m", str(model), "--json"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)["styles"]


def _run_script(script: str, env: dict[str, str], tmp_path: Path) -> None:
    """Prepares, then dry-runs a GPU script; it must leave nothing behind in the temporary folder."""
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    for args in (["prepare"], ["run", "--dry-run"]):
        done = subprocess.run(["bash", script, *args], cwd=ROOT, env={**env, "TMPDIR": str(scratch)},
                              capture_output=True, text=True, timeout=1800)
        assert done.returncode == 0, done.stdout + done.stderr
    assert [p.name for p in scratch.iterdir() if not p.name.startswith("torchinductor_")] == []  # torch's own cache


def test_dry_run_continues_both_models_and_evaluates_them(tmp_path):
    data = tmp_path / "data"
    for i, name in enumerate(_styles_of(ROOT / "weights" / "stylize-22.safetensors")):
        make_photo(data / "styles" / f"{name}.png", size=(48, 40), seed=100 + i)
    for i in range(4):
        make_photo(data / "content" / "train" / f"p{i}.png", size=(40, 40), seed=i)
        make_photo(data / "content" / "test" / f"t{i}.png", size=(40, 32), seed=10 + i)
    env = {**os.environ, "DATA": str(data), "GPU": str(tmp_path / "gpu"), "OUT": str(tmp_path / "out"), "CHECK": "0",
           "FLAT_AREAS": "0.25"}  # as models/stylize-22/flat_finetune.sh sets it
    _run_script("models/gpu_window.sh", env, tmp_path)
    out = tmp_path / "out"
    for model in ("stylize-22", "stylize-22-small"):
        assert _styles_of(out / f"{model}.safetensors") == _styles_of(ROOT / "weights" / f"{model}.safetensors")
        assert read_metadata(out / f"{model}.safetensors")["training"]["flat_areas"] == 0.25
        table = (out / f"eval-{model}.md").read_text()
        assert "| starry_night |" in table and "network / previous" in table
    with tarfile.open(out / "logs.tar") as logs:
        names = logs.getnames()
    assert "./phases.txt" in names and any(n.endswith("stylize-22-small.log.jsonl") for n in names)
    assert any(".snapshots/" in n for n in names)


@pytest.mark.parametrize("init", ["shipped", "full8"])
def test_fast_finetune_dry_run_continues_the_student_beside_its_teacher_and_scores_it(tmp_path, init):
    data = tmp_path / "data"
    styles = _styles_of(ROOT / "weights" / "stylize-22-fast.safetensors")
    for i, name in enumerate(styles):
        make_photo(data / "styles" / f"{name}.png", size=(48, 40), seed=100 + i)
    for i in range(4):
        make_photo(data / "content" / "train" / f"p{i}.png", size=(40, 40), seed=i)
        make_photo(data / "content" / "test" / f"t{i}.png", size=(40, 32), seed=10 + i)
    env = {**os.environ, "DATA": str(data), "GPU": str(tmp_path / "gpu"), "OUT": str(tmp_path / "out")}
    start = ROOT / "weights" / "stylize-22-fast.safetensors"
    if init == "full8":  # a candidate student of another preset, as a snapshot of full8.sh's run would be
        import torch
        from stylize.model import checkpoint
        from stylize.model.network import StyleNet

        torch.manual_seed(0)
        net = StyleNet(dataclasses.replace(PRESETS["full8"], n_styles=len(styles)))
        start = tmp_path / "full8.safetensors"
        checkpoint.save(start, checkpoint.Checkpoint(net=net, styles=styles, step=8000))
        env["INIT"] = str(start)
    _run_script("models/stylize-22-fast/gpu_finetune.sh", env, tmp_path)
    out = tmp_path / "out"
    student = out / "stylize-22-fast.safetensors"
    assert _styles_of(student) == styles
    assert read_metadata(student)["step"] == read_metadata(start)["step"] + 12
    assert read_metadata(student)["config"] == read_metadata(start)["config"]
    assert read_metadata(student)["training"]["weights"]["lattice"] == 1e10
    table = (out / "eval-vs-teacher.md").read_text()
    assert "| starry_night |" in table and "network / previous" in table  # previous: the teacher (--compare)
    with tarfile.open(out / "logs.tar") as logs:
        names = logs.getnames()
        log = logs.extractfile("./stylize-22-fast.log.jsonl").read().decode()
    assert "./phases.txt" in names and any(".snapshots/" in n for n in names)
    assert all({"teacher", "lattice"} <= set(json.loads(line)) for line in log.splitlines() if '"step"' in line)


def test_holdout_21_dry_run_learns_each_held_out_painting_on_a_model_that_never_saw_it(tmp_path):
    data = tmp_path / "data"
    names = ["dawn", "dusk", "noon"]
    for i, name in enumerate(names):
        make_photo(data / "styles" / f"{name}.png", size=(48, 40), seed=100 + i)
    for i in range(4):
        make_photo(data / "content" / "train" / f"p{i}.png", size=(40, 40), seed=i)
        make_photo(data / "content" / "test" / f"t{i}.png", size=(40, 32), seed=10 + i)
    env = {**os.environ, "DATA": str(data), "HOLDOUT_DIR": str(tmp_path / "holdout"), "OUT": str(tmp_path / "out"),
           "HOLDOUT": "dawn,noon"}
    _run_script("models/holdout_21.sh", env, tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "out" / "holdout.jsonl").read_text().splitlines()]
    assert [row["painting"] for row in rows] == ["dawn", "noon"]
    assert all(row["reference_row"] == "own row" and row["learned"] > 0 and "error" not in row for row in rows)
    with tarfile.open(tmp_path / "out" / "logs.tar") as logs:
        names_in = logs.getnames()
    assert "./phases.txt" in names_in and "./train-dawn.txt" in names_in
