"""Stylizing many photos: where each output goes, and a run that never loses one.

:func:`plan` turns the command line's inputs (files, folders, ``-``) and ``-o`` into
:class:`Task` objects, refusing up front anything that would overwrite an input or
make two outputs collide. :func:`run` renders them: a small thread pool decodes the
next photos and encodes finished ones while the network works on the current one,
with bounded queues so memory stays bounded however large the folder. A photo that
fails is reported and skipped; an output that already exists is skipped (so an
interrupted run resumes) unless ``overwrite``; every file is written atomically, and
without ``overwrite`` created exclusively, so two runs into one folder never replace
each other's finished outputs (the later one reports it skipped).

Naming rules (what a careful user expects):

* a file with no ``-o``: ``photo-<style>.<ext>`` beside it;
* a file with ``-o out.jpg``: that file (several styles: ``out-<style>.jpg``);
* a folder with no ``-o``: its tree mirrored into ``<folder>-<style>`` beside it;
* a folder with ``-o DIR``: its tree mirrored into ``DIR``; several inputs each keep
  their own name under ``DIR``; several styles add ``-<style>`` to every file name;
* ``-``: stdin to stdout (or to ``-o FILE``).

Videos named on the command line (not those inside folders) follow the same rules,
keep their own extension, and are rendered frame by frame (:mod:`stylize.apply.video`).

The library reports through ``on_result``; it never prints.
"""

from __future__ import annotations

import errno
import os
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterator, Sequence

from ..config import ApplySettings, BatchOptions, VideoSettings
from ..errors import StylizeError
from ..io.atomic import NAME_MAX
from ..io.formats import SUPPORTED_EXTENSIONS, output_extension_ok
from ..io.images import Photo, read_image, write_image, write_image_to
from ..model.styles import StyleChoice
from .video import is_video, stylize_video

if TYPE_CHECKING:
    from .torch_backend import Stylizer
    from .onnx_backend import OnnxStylizer

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


@dataclass
class Result:
    """What happened to one output; one JSON line of ``--json``."""

    input: str
    output: str
    style: str
    status: str
    error: str | None = None
    seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)
    """Seconds of each stage of an output made: ``read`` (decode), ``render``, ``write`` (encode)."""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Summary:
    """Every result of a run (or of all ranks, once merged) and its wall time."""

    results: list[Result] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if r.status == "failed"]

    def describe(self) -> str | None:
        """One line for people: the single output, or counts and speed (``None`` when
        the only output failed: its error says it all)."""
        ok, skipped, failed = self.count("ok"), self.count("skipped"), self.count("failed")
        if len(self.results) == 1:
            only = self.results[0].output
            if failed:
                return None
            return f"wrote {only}" if ok else f"skipped {only}: it already exists (--overwrite replaces it)"
        rate = ok / self.seconds if self.seconds else 0.0
        return (f"{ok} written, {skipped} skipped (already there), {failed} failed "
                f"in {self.seconds:.1f} s ({rate:.1f} images/s)")

    @classmethod
    def merge(cls, parts: Sequence[Summary]) -> Summary:
        """One summary for a distributed run: all results, the slowest rank's time."""
        return cls([r for part in parts for r in part.results], max((p.seconds for p in parts), default=0.0))


# --------------------------------------------------------------------------- planning


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


# --------------------------------------------------------------------------- running


def run(stylizer: Stylizer | OnnxStylizer, tasks: Sequence[Task], settings: ApplySettings = ApplySettings(),
        options: BatchOptions = BatchOptions(), *, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None,
        on_result: Callable[[Result], None] | None = None, video: VideoSettings = VideoSettings(),
        on_frame: Callable[[Result, int, int | None], None] | None = None) -> Summary:
    """Render every task; decoding and encoding overlap with the network.

    Up to ``options.workers`` photos are decoded ahead and at most ``2 * workers``
    outputs wait to be encoded, so memory stays bounded; with 0 workers each photo is
    read, rendered and written in turn, nothing overlapping. ``stdin`` / ``stdout`` are the
    streams for tasks reading ``-`` or writing to ``-``. Videos are streamed frame by
    frame, reporting ``on_frame(result so far, frames done, total or None)``. Ctrl-C
    stops after cancelling queued work; every file already written is complete.
    """
    summary = Summary()
    report = _Reporter(summary, on_result)
    start = time.perf_counter()
    with ThreadPoolExecutor(max(options.workers, 1), thread_name_prefix="stylize-io") as pool:
        writes: deque[tuple[Result, Future[tuple[float, bool]]]] = deque()
        try:
            for task, todo, reading in _read_ahead(pool, tasks, options, stdin, report, stylizer.arrays):
                if reading is None:
                    for out in todo:
                        report(_video(stylizer, task, out, settings, video, on_frame, options.overwrite))
                    continue
                try:
                    photo, read_seconds = reading.result()
                except StylizeError as exc:
                    for out in todo:
                        report(_result(task, out, "failed", str(exc), 0.0))
                    continue
                for out in todo:
                    tick = time.perf_counter()
                    try:
                        rendered = stylizer.stylize_photo(photo, out.choice, settings)
                    except StylizeError as exc:
                        report(_result(task, out, "failed", f"{task.label}: {exc}", 0.0))
                        continue
                    render_seconds = time.perf_counter() - tick
                    result = _result(task, out, "ok", None, read_seconds + render_seconds)
                    result.stages = {"read": read_seconds, "render": render_seconds}
                    writes.append((result, pool.submit(_write, out, rendered, photo, options, stdout)))
                    while writes and (len(writes) > 2 * options.workers or writes[0][1].done()):
                        report.written(*writes.popleft())
            while writes:
                report.written(*writes.popleft())
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    summary.seconds = time.perf_counter() - start
    return summary


class _Reporter:
    """Collects results and passes each to the caller's callback, from the calling thread."""

    def __init__(self, summary: Summary, on_result: Callable[[Result], None] | None) -> None:
        self.summary = summary
        self.on_result = on_result

    def __call__(self, result: Result) -> None:
        self.summary.results.append(result)
        if self.on_result is not None:
            self.on_result(result)

    def written(self, result: Result, writing: Future[tuple[float, bool]]) -> None:
        """Wait for an output's encoding and report it: failed if writing failed, skipped if
        another run created the file meanwhile."""
        try:
            seconds, created = writing.result()
        except StylizeError as exc:
            result.status, result.error = "failed", str(exc)
        else:
            result.stages["write"] = seconds
            result.seconds += seconds
            if not created:
                result.status = "skipped"
        self(result)


def _read_ahead(pool: ThreadPoolExecutor, tasks: Sequence[Task], options: BatchOptions, stdin: BinaryIO | None,
                report: _Reporter, arrays: bool) -> Iterator[tuple[Task, list[Output], Future[tuple[Photo, float]] | None]]:
    """Yield (task, outputs still to make, decoding future), keeping ``workers`` decodes in flight.

    Outputs that already exist are reported as skipped here, and a task with nothing
    left to make is never decoded. Videos, which stream their own frames, come with no future.
    Photos are decoded to numpy arrays when ``arrays`` (for a stylizer that takes them).
    """
    pending: deque[tuple[Task, list[Output], Future[tuple[Photo, float]] | None]] = deque()
    queue = iter(tasks)
    while True:
        while len(pending) < max(options.workers, 1):
            task = next(queue, None)
            if task is None:
                break
            todo = []
            for out in task.outputs:
                if not options.overwrite and out.destination is not None and out.destination.exists():
                    report(_result(task, out, "skipped", None, 0.0))
                else:
                    todo.append(out)
            if todo:
                video = task.source is not None and is_video(task.source)
                pending.append((task, todo, None if video else pool.submit(_read, task, options, stdin, arrays)))
        if not pending:
            return
        yield pending.popleft()


def _read(task: Task, options: BatchOptions, stdin: BinaryIO | None, arrays: bool) -> tuple[Photo, float]:
    tick = time.perf_counter()
    if task.source is None:
        if stdin is None:
            raise StylizeError("no stdin stream given for input '-'")
        photo = read_image(stdin, max_pixels=options.max_pixels, name=STDIN_LABEL, arrays=arrays)
    else:
        photo = read_image(task.source, max_pixels=options.max_pixels, arrays=arrays)
    return photo, time.perf_counter() - tick


def _video(stylizer: Stylizer, task: Task, out: Output, settings: ApplySettings, video: VideoSettings,
           on_frame: Callable[[Result, int, int | None], None] | None, overwrite: bool) -> Result:
    """Render one video output (folders created as needed); a failure is reported, not raised,
    and a file another run finished there meanwhile is kept and reported skipped."""
    tick = time.perf_counter()
    result = _result(task, out, "ok", None, 0.0)
    progress = None if on_frame is None else lambda done, total: on_frame(result, done, total)
    try:
        _make_folder(out.destination.parent)
        if stylize_video(stylizer, task.source, out.destination, out.choice, settings, video, on_frame=progress,
                         overwrite=overwrite) is None:
            result.status = "skipped"
    except StylizeError as exc:
        result.status, result.error = "failed", f"{task.label}: {exc}"
    result.seconds = time.perf_counter() - tick
    return result


def _write(out: Output, rendered: Photo, source: Photo, options: BatchOptions,
           stdout: BinaryIO | None) -> tuple[float, bool]:
    """Encode one output (folders created as needed): the seconds it took, and whether it was
    written (``False``: without ``overwrite``, another run created the file first)."""
    tick = time.perf_counter()
    extras = {"alpha": rendered.alpha, "icc_profile": rendered.icc_profile, "exif": rendered.exif,
              "quality": options.quality}
    if out.destination is None:
        if stdout is None:
            raise StylizeError("no stdout stream given for output '-'")
        write_image_to(stdout, rendered.rgb, format=_stream_format(source, options), name=STDOUT_LABEL, **extras)
        created = True
    else:
        _make_folder(out.destination.parent)
        created = write_image(out.destination, rendered.rgb, overwrite=options.overwrite, **extras)
    return time.perf_counter() - tick, created


def _stream_format(source: Photo, options: BatchOptions) -> str:
    """Format for stdout: ``--format``, else the input's (camera MPO is JPEG), else PNG."""
    if options.format is not None:
        return options.format
    fmt = {"MPO": "JPEG"}.get(source.format or "", source.format or "")
    return fmt.lower() if output_extension_ok(f"x.{fmt}") else FALLBACK_EXTENSION


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StylizeError(f"cannot create output folder {folder}: a file of that name is in the way") from None
    except OSError as exc:
        raise StylizeError(f"cannot create output folder {folder}: {exc.strerror or exc}") from None


def _result(task: Task, out: Output, status: str, error: str | None, seconds: float) -> Result:
    destination = STDOUT_LABEL if out.destination is None else str(out.destination)
    return Result(task.label, destination, out.choice.label, status, error, seconds)


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
