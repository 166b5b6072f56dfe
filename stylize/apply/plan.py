"""Where each output of a run goes: the command line's inputs and ``-o`` as tasks.

:func:`plan` turns the inputs (files, folders, ``-``) and ``-o`` into :class:`Task`
objects, refusing up front anything that would overwrite an input or make two outputs
collide; :func:`check_folders` refuses up front an output folder that cannot be written.

Naming rules (what a careful user expects):

* a file with no ``-o``: ``photo-<style>.<ext>`` beside it;
* a file with ``-o out.jpg``: that file (several styles: ``out-<style>.jpg``);
* a folder with no ``-o``: its tree mirrored into ``<folder>-<style>`` beside it;
* a folder with ``-o DIR``: its tree mirrored into ``DIR``; several inputs each keep
  their own name under ``DIR``; several styles add ``-<style>`` to every file name;
* ``-``: stdin to stdout (or to ``-o FILE``).

Videos named on the command line (not those inside folders) follow the same rules and
keep their own extension.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from ..config import BatchOptions
from ..errors import StylizeError
from ..io.atomic import NAME_MAX
from ..io.formats import SUPPORTED_EXTENSIONS, is_video, output_extension_ok
from ..model.styles import StyleChoice

STDIO = "-"
STDIN_LABEL = "<stdin>"
STDOUT_LABEL = "<stdout>"
FALLBACK_EXTENSION = ".png"
"""Output extension for an input whose own format cannot be written (e.g. ``.gif``)."""


@dataclass(frozen=True)
class Output:
    """One rendering of a task's photo: the style and where it goes (``None``: stdout)."""

    choice: StyleChoice
    destination: Path | None


@dataclass(frozen=True)
class Task:
    """One input photo (``source`` ``None``: stdin) and the renderings to make of it.

    ``key`` is the input's path relative to what the user named, the same on every
    machine, so distributed ranks split tasks identically.
    """

    source: Path | None
    outputs: tuple[Output, ...]
    key: str

    @property
    def label(self) -> str:
        return STDIN_LABEL if self.source is None else str(self.source)


def plan(inputs: Sequence[str], output: str | None, choices: Sequence[StyleChoice],
         options: BatchOptions = BatchOptions()) -> list[Task]:
    """Where every rendering of every input goes; raises on anything that cannot be right."""
    if not inputs:
        raise StylizeError("no input given: name photos, folders, or '-' for stdin")
    if not choices:
        raise StylizeError("no style chosen")
    if STDIO in inputs:
        return [_stdin_task(inputs, output, choices)]
    sources = [Path(p) for p in dict.fromkeys(inputs)]
    to_dir = _output_is_directory(sources, output)
    if output == STDIO:
        if len(sources) != 1 or sources[0].is_dir() or len(choices) != 1 or is_video(sources[0]):
            raise StylizeError("-o - (stdout) takes one photo in one style")
        return [Task(sources[0], (Output(choices[0], None),), sources[0].name)]
    out = Path(output) if output is not None else None
    if out is not None and not to_dir and not (output_extension_ok(out) or is_video(out)):
        raise StylizeError(f"-o {out}: cannot tell the output format from {out.suffix!r}; "
                           f"use one of {', '.join(sorted(SUPPORTED_EXTENSIONS))}, or a folder")
    tasks: list[Task] = []
    for source in sources:
        if source.is_dir():
            tasks += _folder_tasks(source, out, len(sources) > 1, choices, options)
        else:
            tasks.append(_file_task(source, out, to_dir, choices, options))
    if not tasks:
        raise StylizeError(f"no images found in {', '.join(inputs)} "
                           f"(looked for {', '.join(sorted(SUPPORTED_EXTENSIONS))})")
    _check_destinations(tasks)
    return tasks


def _stdin_task(inputs: Sequence[str], output: str | None, choices: Sequence[StyleChoice]) -> Task:
    if len(inputs) > 1:
        raise StylizeError("'-' (stdin) cannot be combined with other inputs")
    if len(choices) > 1:
        raise StylizeError("stdin holds one photo for one style; use files to render several styles")
    destination = None if output in (None, STDIO) else Path(output)
    if destination is not None and (destination.is_dir() or not output_extension_ok(destination)):
        raise StylizeError(f"-o {destination}: with stdin input, -o must be an image file name (e.g. out.jpg)")
    return Task(None, (Output(choices[0], destination),), STDIN_LABEL)


def _output_is_directory(sources: list[Path], output: str | None) -> bool:
    """Whether ``-o`` names a folder: it is one, ends with a slash, or has no extension.

    A file name is refused when the input is a folder or several inputs, which one file
    cannot hold.
    """
    if output is None or output == STDIO:
        return False
    out = Path(output)
    several = len(sources) > 1 or any(s.is_dir() for s in sources)
    if out.is_dir() or output.endswith(("/", os.sep)) or not out.suffix:
        return True
    if several:
        raise StylizeError(f"-o {output} names a file, but a folder or several inputs need an output folder")
    return False


def _file_task(source: Path, out: Path | None, to_dir: bool, choices: Sequence[StyleChoice],
               options: BatchOptions) -> Task:
    """Renderings of one named file: beside it, into ``-o DIR``, or as ``-o FILE``."""
    several = len(choices) > 1
    if out is None:
        folder, stem, ext, suffixed = source.parent, source.stem, _extension(source, options), True
    elif to_dir:
        folder, stem, ext, suffixed = out, source.stem, _extension(source, options), several
    else:
        folder, stem, ext, suffixed = out.parent, out.stem, out.suffix, several
        if is_video(source) != is_video(out):
            raise StylizeError(f"-o {out}: a {'video' if is_video(source) else 'photo'} cannot be written as "
                               f"{out.suffix!r}")
    outputs = tuple(Output(c, folder / _name(stem, c, ext, suffixed)) for c in choices)
    return Task(source, outputs, source.name)


def _folder_tasks(folder: Path, out: Path | None, among_several: bool, choices: Sequence[StyleChoice],
                  options: BatchOptions) -> list[Task]:
    """Renderings of every image under ``folder``, its tree mirrored into the output folder."""
    name = folder.resolve().name
    several = len(choices) > 1
    if out is None:
        roots = [folder.resolve().parent / _component(f"{name}-{c.label}") for c in choices]
        suffixed = False
    else:
        root = out / name if among_several else out
        roots, suffixed = [root] * len(choices), several
        if _identity(folder).is_relative_to(_identity(root)):
            raise StylizeError(f"-o {out}: {'it is' if _identity(folder) == _identity(root) else 'it holds'} "
                               f"the input folder {folder}, whose photos the outputs would mix with or replace; "
                               "choose another -o")
    tasks = []
    for source in _images_under(folder, exclude=roots):
        relative = source.relative_to(folder)
        ext = _extension(source, options)
        outputs = tuple(Output(c, root / relative.parent / _name(relative.stem, c, ext, suffixed))
                        for c, root in zip(choices, roots, strict=True))
        key = Path(name) / relative if among_several else relative
        tasks.append(Task(source, outputs, key.as_posix()))
    return tasks


def _name(stem: str, choice: StyleChoice, ext: str, suffixed: bool) -> str:
    """``stem-<style>.ext`` when the style must be told apart in the name, else ``stem.ext``."""
    return _component(f"{stem}-{choice.label}{ext}" if suffixed else f"{stem}{ext}")


def _component(name: str) -> str:
    """``name`` if it is one file name: style names come from checkpoints, which are untrusted,
    and no output may land outside the folder it was planned in."""
    separators = {"/", os.sep, os.altsep or "/"}
    if name in (".", "..") or any(s in name for s in separators) or "\0" in name:
        raise StylizeError(f"refusing output name {name!r}: it is not a single file name")
    size = len(os.fsencode(name))
    if size > NAME_MAX:
        raise StylizeError(f"refusing output name {name!r}: {size} bytes, longer than the {NAME_MAX} bytes a file "
                           "name can have; name the output with -o")
    return name


def _images_under(folder: Path, exclude: Sequence[Path]) -> Iterator[Path]:
    """Image files under ``folder``, sorted, skipping hidden ones (``.DS_Store``, ``._IMG.jpg``)
    and anything inside an output folder, so that ``-o folder/out`` never feeds on itself."""
    excluded = [e.resolve() for e in exclude]
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.suffix.lower() not in SUPPORTED_EXTENSIONS or any(p.startswith(".") for p in relative.parts):
            continue
        if not path.is_file() or any(path.resolve().is_relative_to(e) for e in excluded):
            continue
        yield path


def _extension(source: Path, options: BatchOptions) -> str:
    """The output extension: a video's own; a photo's ``--format``, else its own when it can be written."""
    if is_video(source):
        return source.suffix
    if options.format is not None:
        return _dotted(options.format)
    return source.suffix if output_extension_ok(source) else FALLBACK_EXTENSION


def _dotted(fmt: str) -> str:
    return "." + fmt.lower().lstrip(".")


def _check_destinations(tasks: list[Task]) -> None:
    """Refuse a plan in which an output would replace an input or another output."""
    inputs = {_identity(t.source): t.source for t in tasks if t.source is not None}
    seen: dict[Path, str] = {}
    for task in tasks:
        for out in task.outputs:
            if out.destination is None:
                continue
            where = _identity(out.destination)
            if where in inputs:
                raise StylizeError(f"refusing to write {out.destination}: it is the input {inputs[where]}; "
                                   "choose another -o")
            if where in seen:
                raise StylizeError(f"{task.label} and {seen[where]} would both be written to {out.destination}; "
                                   "use separate -o folders or --format")
            seen[where] = task.label


def _identity(path: Path) -> Path:
    """A path as the file system sees it (links and ``..`` resolved, case as stored)."""
    try:
        return path.resolve()
    except (RuntimeError, OSError) as exc:  # a loop: RuntimeError before Python 3.13, OSError ELOOP since
        if isinstance(exc, OSError) and exc.errno != errno.ELOOP:
            raise
        raise StylizeError(f"{path}: a symbolic link loop, which leads to no file") from None


def check_folders(tasks: Sequence[Task]) -> None:
    """Fail once, up front, if an output folder cannot be created or written to.

    Without this an unwritable ``-o`` would fail every photo separately. Nothing is
    created here: folders are made when their first file is written, so a run that
    writes nothing leaves no empty folders behind.
    """
    for folder in sorted({o.destination.parent for t in tasks for o in t.outputs if o.destination is not None}):
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise StylizeError(f"cannot write into {folder}: {existing} is a file, not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise StylizeError(f"cannot write into {folder}: permission denied in {existing}")
