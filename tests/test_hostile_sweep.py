"""What a hostile sweep of the command line found (issue 28): each case one worded line, the
right exit code, and nothing lost."""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest

from stylize import atomic


# --------------------------------------------------------------------------- names at the 255-byte limit

def test_the_temporary_name_of_a_long_output_name_fits_the_limit(tmp_path: Path) -> None:
    for name in ("a" * 240 + ".png", "é" * 120 + ".png"):  # 244 bytes: the temporary name beside it is longer
        target = tmp_path / name
        assert atomic.write_atomically(target, b"data", replace=False)
        assert target.read_bytes() == b"data"
    assert len(list(tmp_path.iterdir())) == 2


def test_a_long_output_names_leftover_temporary_file_is_still_cleaned(tmp_path: Path) -> None:
    target = tmp_path / ("b" * 250 + ".png")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    left = atomic.temp_path(target, child.pid)  # what a run killed mid-write leaves
    assert len(left.name.encode()) <= 255
    left.write_bytes(b"partial")
    assert atomic.remove_stale_temps(tmp_path) == [left]


# --------------------------------------------------------------------------- full disk in readable units

@pytest.mark.parametrize(("size", "free", "words"), [
    (10_000, 0, "needs 10.0 KB, 0 bytes free"),
    (2_500_000, 1_200_000, "needs 2.5 MB, 1.2 MB free"),
    (3_000_000_000, 512, "needs 3.0 GB, 512 bytes free"),
])
def test_the_full_disk_line_uses_a_readable_unit(tmp_path: Path, monkeypatch, size: int, free: int,
                                                 words: str) -> None:
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda path: type("Usage", (), {"free": free})())
    message = atomic.write_failure(OSError(errno.ENOSPC, "No space left on device"), tmp_path / "x.png", size)
    assert words in message
