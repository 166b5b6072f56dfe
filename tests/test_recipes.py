"""A long recipe continues where it stopped when run again: each step resumes, or is skipped once done.

The recipe runs with a stand-in ``stylize`` first on PATH that logs its arguments and writes the
file given to ``-o``, so what is checked is the script's own logic, in a second, without training.
"""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAKE_STYLIZE = """#!/usr/bin/env bash
echo "$*" >> "$STYLIZE_CALLS"
previous=
for arg in "$@"; do
  [ "$previous" = -o ] && touch "$arg"
  previous=$arg
done
"""


def _run_recipe(script: str, tmp_path: Path, env: dict[str, str]) -> list[str]:
    """Runs ``script`` from the project root with the stand-in; returns the commands it ran."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "stylize"
    fake.write_text(FAKE_STYLIZE)
    fake.chmod(0o755)
    calls = tmp_path / "calls.txt"
    calls.write_text("")
    done = subprocess.run(["bash", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env, "PATH": f"{bin_dir}:{os.environ['PATH']}",
                               "STYLIZE_CALLS": str(calls)})
    assert done.returncode == 0, done.stdout + done.stderr
    return calls.read_text().splitlines()


def test_full8_recipe_resumes_the_step_it_stopped_in_then_goes_on_and_skips_finished_steps(tmp_path):
    run = tmp_path / "run"
    env = {"RUN": str(run), "DATA": str(tmp_path / "data")}
    (run / "ft").mkdir(parents=True)
    (run / "final.safetensors").touch()  # step 1 done
    (run / "ft" / "stylize-22-full8.safetensors").touch()  # step 2 stopped part-way
    calls = _run_recipe("models/stylize-22-fast/full8.sh", tmp_path, env)
    assert [call.split()[0] for call in calls] == ["train", "export"] * 3
    assert "--resume" in calls[0] and f"-o {run}/ft/stylize-22-full8.safetensors" in calls[0]
    assert f"--init-from {run}/ft/final.safetensors" in calls[2] and "--resume" not in calls[2]
    assert f"--init-from {run}/ft3/final.safetensors" in calls[4] and "--teacher-weight 6.25e4" in calls[4]
    assert (run / "ft4" / "final.safetensors").exists()
    assert _run_recipe("models/stylize-22-fast/full8.sh", tmp_path, env) == []  # all done: nothing runs again


def test_full8_recipe_starts_with_the_distillation(tmp_path):
    run = tmp_path / "run"
    calls = _run_recipe("models/stylize-22-fast/full8.sh", tmp_path, {"RUN": str(run), "DATA": str(tmp_path / "d")})
    assert calls[0].startswith("distill weights/stylize-22.safetensors") and "--preset full8" in calls[0]
    assert "--resume" not in calls[0] and "--init-from" in calls[2]  # step 2 starts from step 1's export
