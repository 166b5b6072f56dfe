"""The README's Python API block runs as pasted from the repository root."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def python_blocks_after(heading: str) -> list[str]:
    """The ```python blocks of the README section that starts with ``heading``."""
    text = (ROOT / "README.md").read_text()
    section = text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_python_api_block_runs_as_pasted(tmp_path: Path) -> None:
    block = python_blocks_after("## Python API")[0]
    # The repository root as the block sees it, with its writes landing in tmp_path.
    for name in ("weights", "examples"):
        (tmp_path / name).symlink_to(ROOT / name)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert "starry_night" in done.stdout
    written = sorted(p for p in tmp_path.iterdir() if p.is_file())
    assert written, "the block saves its results"
    for path in written:
        with Image.open(path) as image:
            assert min(image.size) > 100


def section(heading: str, until: str) -> str:
    text = (ROOT / "README.md").read_text()
    return text.split(f"\n{heading}\n", 1)[1].split(f"\n{until}\n", 1)[0]


def test_the_cli_reference_restates_no_defaults() -> None:
    """Defaults live in stylize/config/ and `--help` shows them; a copy in the README goes stale."""
    reference = section("## CLI reference", "## Python API")
    assert "| option | default |" not in reference
    assert not re.findall(r"\(default:? [\d.]+", reference)


def test_the_readme_quotes_no_timings() -> None:
    """Timings, with machine and date, are in benchmarks/README.md (and the model cards); the README points there."""
    text = (ROOT / "README.md").read_text()
    assert not re.findall(r"\d(?:\.\d+)? ?(?:s|ms|min|µs/px|ms/step)\b", text)
    assert not re.findall(r"\d+(?:\.\d+)? ?GiB\b", text)
    assert "benchmarks/README.md" in section("## Speed", "## Several GPUs or machines (`torchrun`)")
