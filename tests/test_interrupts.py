"""Ctrl-C while a module imports: held until the import ends, then raised (stylize.runtime.interrupts)."""

from __future__ import annotations

import builtins
import signal
import subprocess
import sys
import textwrap

import pytest

from stylize.runtime.interrupts import interrupts_after_imports

# An outer module that imports an inner one the way torch's C extension imports numpy: any
# error of that import, KeyboardInterrupt included, is cleared, and the outer import goes on.
OUTER = textwrap.dedent("""
    try:
        import inner_sends_sigint
    except BaseException:
        pass
    finished = True
""")
INNER = "import os, signal\nos.kill(os.getpid(), signal.SIGINT)\n"


@pytest.fixture
def modules(tmp_path, monkeypatch):
    (tmp_path / "outer_swallows.py").write_text(OUTER)
    (tmp_path / "inner_sends_sigint.py").write_text(INNER)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("outer_swallows", "inner_sends_sigint"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal's foreground command
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_swallowed_interrupt_is_lost_without_the_hold(modules):
    """The failure the hold exists for: the Ctrl-C vanishes and the program runs on."""
    import outer_swallows

    assert outer_swallows.finished


def test_an_interrupt_during_an_import_is_raised_when_the_import_ends(modules):
    original = builtins.__import__
    with pytest.raises(KeyboardInterrupt), interrupts_after_imports():
        import outer_swallows  # noqa: F401
    assert sys.modules["outer_swallows"].finished  # the import ran to its end first
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert builtins.__import__ is original  # both put back


def test_an_interrupt_outside_imports_is_raised_at_once(modules):
    with pytest.raises(KeyboardInterrupt), interrupts_after_imports():
        signal.raise_signal(signal.SIGINT)
        pytest.fail("not interrupted")


def test_an_ignored_sigint_stays_ignored():
    """A background job inherits SIGINT ignored; the hold must not make it interruptible."""
    code = ("import signal\nfrom stylize.runtime.interrupts import interrupts_after_imports\n"
            "with interrupts_after_imports():\n    signal.raise_signal(signal.SIGINT)\n    import json\nprint('ran on')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert done.returncode == 0 and done.stdout.strip() == "ran on", done.stderr


def test_the_console_script_module_runs_nothing_when_imported():
    """``stylize.__main__:console`` is the console script: importing the module must not run the CLI."""
    done = subprocess.run([sys.executable, "-c", "import stylize.__main__, builtins, sys; "
                           "sys.exit(builtins.__import__.__module__ != 'builtins')"], timeout=60)
    assert done.returncode == 0


@pytest.mark.parametrize("backend, delay", [("onnx", 0.3), ("torch", 1.0)])
def test_ctrl_c_while_apply_starts_exits_130_in_one_line(tiny_model, tmp_path, backend, delay):
    """`stylize apply` stopped while it imports and opens the model (torch's import with
    --backend torch): exit 130, one line that does not speak of learning a style, nothing left."""
    import time

    from conftest import ctrl_c, make_photo, start_command

    # Enough work that the run cannot end before the signal however fast the machine (an idle
    # one opens the model and renders four small photos in under 0.3 s on ONNX Runtime).
    photos = [str(make_photo(tmp_path / "in" / f"p{i}.png", (320, 240), seed=i)) for i in range(24)]
    out = tmp_path / "out"
    proc = start_command(["apply", *photos, "-m", str(tiny_model), "-s", "scream", "-o", f"{out}/",
                          "--backend", backend, "--device", "cpu", "-q"])
    time.sleep(delay)
    stderr = ctrl_c(proc)
    lines = stderr.strip().splitlines()
    assert proc.returncode == 130 and len(lines) == 1 and "interrupted" in lines[0], stderr
    assert "learning the style" not in stderr
    left = sorted(p.name for p in out.iterdir()) if out.exists() else []
    assert not [name for name in left if name.endswith(".tmp")], left
