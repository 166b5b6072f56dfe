"""A long recipe continues where it stopped when run again: each step resumes, or is skipped once done.

The recipe runs with a stand-in ``stylize`` first on PATH that logs its arguments and writes the
file given to ``-o`` (and a stand-in ``python``), so what is checked is the script's own logic, in a
second, without training.
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
if [ "$1" = evaluate ]; then
  [ -n "${FAIL_EVALUATE:-}" ] && { echo "| half a tab"; exit 1; }
  echo "| style | a | b | c | d | e | f | g | teacher | ratio |"
fi
exit 0
"""
FAKE_PYTHON = """#!/usr/bin/env bash
echo "python $*" >> "$STYLIZE_CALLS"
echo "| style | PSNR |"
"""


def _run_recipe(script: str, tmp_path: Path, env: dict[str, str], *args: str, fails: bool = False) -> list[str]:
    """Runs ``script`` with ``args`` from the project root with the stand-ins; returns the commands it ran."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in (("stylize", FAKE_STYLIZE), ("python", FAKE_PYTHON)):
        fake = bin_dir / name
        fake.write_text(text)
        fake.chmod(0o755)
    calls = tmp_path / "calls.txt"
    calls.write_text("")
    done = subprocess.run(["bash", script, *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env, "PATH": f"{bin_dir}:{os.environ['PATH']}",
                               "STYLIZE_CALLS": str(calls)})
    assert (done.returncode != 0) == fails, done.stdout + done.stderr
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


def _ship_env(tmp_path: Path) -> dict[str, str]:
    """ship.sh's folders redirected into the test's, so the project's weights and card stay untouched."""
    for folder in ("weights", "card"):
        (tmp_path / folder).mkdir()
    return {"DATA": str(tmp_path / "data"), "WEIGHTS": str(tmp_path / "weights"), "CARD": str(tmp_path / "card")}


def test_ship_writes_the_lean_model_its_graph_and_the_cards_figures(tmp_path):
    env = _ship_env(tmp_path)
    calls = _run_recipe("models/stylize-22-fast/ship.sh", tmp_path, env, "runs/x/final.safetensors")
    model = f"{tmp_path}/weights/stylize-22-fast.safetensors"
    assert calls[0] == f"export runs/x/final.safetensors -o {model} --overwrite"
    assert calls[1].startswith(f"export -m {model} --onnx {tmp_path}/weights/stylize-22-fast.onnx")
    assert calls[2].startswith(f"evaluate -m {model} --compare weights/stylize-22.safetensors")
    assert calls[3].startswith(f"python models/teacher_match.py --student {model}")
    card = tmp_path / "card"
    assert (card / "evaluation-vs-teacher.md").read_text().startswith("| style | a |")
    assert (card / "evaluation.md").read_text() == "| style | a | b | c | d | e | f | g |\n"  # teacher columns cut
    assert (card / "teacher-psnr.md").read_text() == "| style | PSNR |\n"
    assert sorted(path.name for path in card.iterdir()) == ["evaluation-vs-teacher.md", "evaluation.md",
                                                            "teacher-psnr.md"]


def test_ship_leaves_the_cards_figures_as_they_were_when_the_evaluation_fails(tmp_path):
    env = _ship_env(tmp_path)
    card = tmp_path / "card"
    for name in ("evaluation-vs-teacher.md", "evaluation.md", "teacher-psnr.md"):
        (card / name).write_text(f"the shipped model's {name}\n")
    _run_recipe("models/stylize-22-fast/ship.sh", tmp_path, {**env, "FAIL_EVALUATE": "1"},
                "runs/x/final.safetensors", fails=True)
    for name in ("evaluation-vs-teacher.md", "evaluation.md", "teacher-psnr.md"):
        assert (card / name).read_text() == f"the shipped model's {name}\n"
    assert len(list(card.iterdir())) == 3  # no half-written figures left beside them
