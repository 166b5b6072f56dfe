"""Complete-or-absent file writes: a file is either its old self or whole, never half-written.

Every file stylize writes (stylized photos, checkpoints, caches) is first made in
memory, then written to a hidden temporary file beside the destination with a loop
that checks every ``write()`` (a full disk gives short writes, which some encoders
silently accept), flushed with ``fsync``, checked for its size, and only then put in
place. Any failure, Ctrl-C included, removes the temporary file and leaves the
destination alone.

Putting in place either replaces the destination (:func:`os.replace`) or, with
``replace=False``, creates it exclusively: the temporary file is hard-linked to the
destination name, which fails if a file of that name appeared meanwhile (another run
finished it first), so a finished file is never replaced without being asked to.

Temporary files are named ``.NAME.stylize-PID.XXXXXXXX.tmp`` (NAME shortened so the whole
fits the 255-byte limit of a file name). A process killed mid-write leaves one behind; the
next write into that folder removes those whose process is gone (or that are older than
:data:`STALE_AFTER_S`), once per folder per process. Only names with the ``stylize-`` marker
are touched: another program's ``.notes.txt.123.deadbeef.tmp`` is not provably ours.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import threading
import time
from pathlib import Path
from typing import Callable

STALE_AFTER_S = 3600.0
"""A temporary file of ours this old is stale even if its process id is in use (ids get reused,
and a file on a shared folder may name a process of another machine)."""

_TEMP_NAME = re.compile(r"\.(?P<name>.*)\.stylize-(?P<pid>\d+)\.[0-9a-f]{8}\.tmp")
"""Our temporary files: ``.NAME.stylize-PID.XXXXXXXX.tmp``."""

NAME_MAX = 255
"""The longest file name, in bytes, of the common file systems (ext4, XFS, APFS, NTFS in UTF-16 units)."""

_NO_HARD_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS,
                            errno.EXDEV})
"""What ``link()`` fails with on file systems without hard links (FAT, some network shares)."""

_cleaned: set[Path] = set()
_cleaned_lock = threading.Lock()


def write_atomically(path: str | Path, data: bytes, *, replace: bool = True) -> bool:
    """Write ``data`` to ``path`` completely or not at all; ``False`` if it was not written.

    With ``replace`` an existing file is replaced (keeping its permission bits);
    without, ``path`` is created only if absent at the very moment it is put in place,
    and ``False`` means another file was there. Raises ``OSError`` (full disk, missing
    or read-only folder) after removing the temporary file; callers word the message.
    """
    path = Path(path)
    remove_stale_temps(path.parent)
    tmp, fd = _create_temp(path)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
            written = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if written != len(data):
            raise OSError(errno.EIO, f"only {written} of {len(data)} bytes reached the disk")
        return _put_in_place(tmp, path, replace)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def replace_atomically(path: str | Path, write: Callable[[Path], None], *, replace: bool = True) -> bool:
    """Like :func:`write_atomically`, for writers that need a file name (a video muxer streams
    more than memory should hold): ``write(tmp)`` fills the temporary file, which is then
    flushed to disk and put in place. The writer must raise on a failed write itself;
    prefer :func:`write_atomically`, which checks every write."""
    path = Path(path)
    remove_stale_temps(path.parent)
    tmp, fd = _create_temp(path)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        return _put_in_place(tmp, path, replace)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _put_in_place(tmp: Path, path: Path, replace: bool) -> bool:
    """Give the complete ``tmp`` the name ``path``: replacing (keeping the replaced file's
    permission bits), or only if the name is free; whether it did."""
    if replace:
        mode = _mode(path)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
        done = True
    else:
        done = _create_from(tmp, path)
    _sync_folder(path.parent)
    return done


def write_failure(exc: OSError, path: Path, size: int) -> str:
    """Why writing ``size`` bytes to ``path`` failed, in words; for a full disk, how much was free."""
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        try:
            free = shutil.disk_usage(path.parent).free
        except OSError:
            return f"{reason} (needs {readable_size(size)})"
        return f"{reason} (needs {readable_size(size)}, {readable_size(free)} free in {path.parent})"
    return reason


def readable_size(size: int) -> str:
    """A size in the unit that reads best (powers of 1000, as disks are sold): 512 bytes, 10.0 KB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def temp_path(path: Path, pid: int) -> Path:
    """The temporary name beside ``path`` for process ``pid`` (a fresh random part each call),
    its copy of the name cut, on a character boundary, to fit :data:`NAME_MAX`."""
    tail = f".stylize-{pid}.{os.urandom(4).hex()}.tmp"
    room = NAME_MAX - len(tail.encode()) - 1
    name = path.name.encode()[:room].decode(errors="ignore")
    return path.parent / f".{name}{tail}"


def temp_owner(name: str) -> int | None:
    """The process id in one of our temporary file names; ``None`` for any other name."""
    match = _TEMP_NAME.fullmatch(name)
    return int(match["pid"]) if match else None


def _create_temp(path: Path) -> tuple[Path, int]:
    """A new hidden file beside ``path`` and its open descriptor.

    Mode 0o666 lets the umask decide permissions as for any new file (``tempfile``
    would force 0o600 on the final output).
    """
    while True:
        candidate = temp_path(path, os.getpid())
        try:
            return candidate, os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue


def _write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written; a write that makes no progress is a full disk."""
    view = memoryview(data)
    while view:
        count = os.write(fd, view)
        if count <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[count:]


def _create_from(tmp: Path, path: Path) -> bool:
    """Give ``tmp``'s content the name ``path`` only if nothing has it; whether it did."""
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
    # No hard links here: check, then rename. Another run can slip in between the two.
    if path.exists():
        return False
    os.replace(tmp, path)
    return True


def _mode(path: Path) -> int | None:
    """Permission bits of ``path``; ``None`` if it does not exist."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None


def _sync_folder(folder: Path) -> None:
    """Make the new name itself durable (best effort: not every system can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Remove the temporary files killed runs left in ``folder``; the paths removed.

    Scans a folder once per process: a run writing thousands of files into one
    folder lists it once.
    """
    folder = Path(folder)
    key = folder.resolve()
    with _cleaned_lock:
        if key in _cleaned:
            return []
        _cleaned.add(key)
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    now = time.time()
    for entry in entries:
        pid = temp_owner(entry.name)
        if pid is None or not entry.is_file(follow_symlinks=False):
            continue
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if not process_running(pid) or age > STALE_AFTER_S:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def process_running(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (elsewhere than POSIX: assumed so)."""
    if pid == os.getpid() or os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process, or cannot tell: keep the file
    return True
