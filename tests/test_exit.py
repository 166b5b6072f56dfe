"""The command line ends a finished process without the interpreter's teardown, losing nothing."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from stylize.runtime.exit import nothing_left_running


def run_script(body: str, tmp_path: Path) -> subprocess.CompletedProcess[bytes]:
    script = tmp_path / "script.py"
    script.write_text("import atexit, sys, threading, time\nfrom stylize.runtime.exit import exit_process\n" + body)
    return subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, timeout=120)


def test_exit_handlers_run_output_is_flushed_and_the_code_kept(tmp_path: Path) -> None:
    """What a normal exit would have done still happens: atexit handlers (coverage data, temporary
    folders), every byte written to stdout and stderr (buffered, no newline at the end)."""
    done = run_script("atexit.register(lambda: open(sys.argv[1] + '/handler-ran', 'w').close())\n"
                      "sys.stdout.write('x' * 1_000_000)\nsys.stderr.write('last words')\nexit_process(3)\n", tmp_path)
    assert done.returncode == 3
    assert done.stdout == b"x" * 1_000_000 and done.stderr == b"last words"
    assert (tmp_path / "handler-ran").exists()


def test_a_thread_still_working_is_waited_for(tmp_path: Path) -> None:
    """A writer thread that has not finished must finish: then the exit is the ordinary one."""
    done = run_script("def work():\n    time.sleep(0.5)\n    open(sys.argv[1] + '/written', 'w').close()\n"
                      "threading.Thread(target=work).start()\nexit_process(0)\n", tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "written").exists()


def test_only_a_lone_main_thread_exits_at_once() -> None:
    release = threading.Event()
    worker = threading.Thread(target=release.wait)
    worker.start()
    try:
        assert not nothing_left_running()
    finally:
        release.set()
        worker.join()
    assert nothing_left_running()


def test_the_console_entry_point_returns_the_commands_exit_code(tmp_path: Path) -> None:
    ok = subprocess.run([sys.executable, "-m", "stylize", "--version"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and ok.stdout.startswith("stylize ")
    bad = subprocess.run([sys.executable, "-m", "stylize", "apply", str(tmp_path / "missing.jpg"), "-s", "starry"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and bad.stderr.strip().startswith("error:") and len(bad.stderr.splitlines()) == 1
