"""What a Python user expects of a distribution: the licence, type information and metadata in
the wheel; an sdist whose contents stand on their own; a bare ``pytest`` that collects.

The builds run setuptools' own backend in this interpreter on a copy of the files git would
ship (no network, nothing left in the checkout).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import stylize

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the checkout's files as git sees them (tracked and new, not ignored)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    copy = tmp_path_factory.mktemp("source")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / name, copy / name)
    return copy


def build(source: Path, kind: str, out: Path) -> Path:
    """Build a wheel or an sdist of ``source`` into ``out`` with setuptools' backend."""
    code = f"from setuptools import build_meta; print(build_meta.build_{kind}({str(out)!r}))"
    done = subprocess.run([sys.executable, "-c", code], cwd=source, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return out / done.stdout.strip().splitlines()[-1]


def test_the_wheel_ships_the_licence_type_information_and_metadata(source: Path, tmp_path: Path) -> None:
    wheel = build(source, "wheel", tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = f"stylize_cin-{stylize.__version__}.dist-info"
        metadata = Parser().parsestr(archive.read(f"{info}/METADATA").decode())
        licence = archive.read(f"{info}/licenses/LICENSE").decode()
    assert "stylize/py.typed" in names
    assert licence.startswith("MIT License") and "Copyright (c) 2026 the stylize authors" in licence
    assert metadata["License-Expression"] == "MIT"
    assert metadata["Author"] == "stylize authors"
    classifiers = metadata.get_all("Classifier")
    assert "Programming Language :: Python :: 3" in classifiers and "Typing :: Typed" in classifiers


def test_the_sdist_carries_the_licence_and_no_tests_it_cannot_run(source: Path, tmp_path: Path) -> None:
    sdist = build(source, "sdist", tmp_path)
    base = f"stylize_cin-{stylize.__version__}/"
    with tarfile.open(sdist) as archive:
        names = {name.removeprefix(base) for name in archive.getnames()}
    assert "LICENSE" in names and "stylize/py.typed" in names
    # The tests need conftest.py, benchmarks/, models/ and examples/, which an sdist leaves out.
    assert not {name for name in names if name.startswith("tests/")}


def test_the_project_files_a_user_looks_for_are_there() -> None:
    import yaml

    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] and citation["title"] == "stylize" and citation["license"] == "MIT"
    assert citation["version"] == stylize.__version__
    assert f"## {stylize.__version__}" in (ROOT / "CHANGELOG.md").read_text()


def test_bare_pytest_collects_every_test() -> None:
    """``pytest`` (the command, not ``python -m pytest``) does not put the root on sys.path itself."""
    pytest_command = Path(sys.executable).parent / "pytest"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([str(pytest_command), "--co", "-q", "-p", "no:cacheprovider"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "error" not in done.stdout.lower().splitlines()[-1]
