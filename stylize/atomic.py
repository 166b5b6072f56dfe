"""Atomic file replacement: a file is either its old self or complete, never half-written.

Used for every file stylize writes (stylized photos, checkpoints, the VGG cache): the
content goes to a hidden temporary file beside the destination, is flushed to disk,
and is moved over the destination with :func:`os.replace` only once complete. Any
failure, Ctrl-C included, removes the temporary file and leaves the destination alone.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import Callable


def _create_temp(path: Path) -> Path:
    """An empty, hidden, uniquely named file beside ``path``.

    ``os.open`` with mode 0o666 lets the umask decide permissions as for a normal new
    file (``tempfile`` would force 0o600 on the final output).
    """
    while True:
        candidate = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return candidate


def _mode(path: Path) -> int | None:
    """Permission bits of ``path``; ``None`` if it does not exist."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None


def replace_atomically(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` to fill a temporary file, then move it over ``path``.

    Raises whatever ``write`` or the file system raises (``OSError`` for a missing or
    read-only directory); callers turn that into a message that fits their file.
    """
    path = Path(path)
    tmp = _create_temp(path)
    new_file_mode = _mode(tmp)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        # The replaced file's bits if there is one, else the umask's. Re-applied after
        # ``write`` because some writers (safetensors) recreate the file as 0o600.
        mode = _mode(path)
        os.chmod(tmp, mode if mode is not None else new_file_mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
