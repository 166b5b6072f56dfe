"""Stylizing many photos: a run that never loses one.

:func:`run` renders the tasks of :func:`stylize.apply.plan.plan`: a small thread pool
decodes the next photos and encodes finished ones while the network works on the
current one, with bounded queues so memory stays bounded however large the folder. A
photo that fails is reported and skipped; an output that already exists is skipped (so
an interrupted run resumes) unless ``overwrite``; every file is written atomically, and
without ``overwrite`` created exclusively, so two runs into one folder never replace
each other's finished outputs (the later one reports it skipped). Videos are rendered
frame by frame (:mod:`stylize.apply.video`).

The first photo of a run can be decoded while the model opens (:class:`EarlyRead`).

The library reports through ``on_result``; it never prints.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterator, Sequence

from ..config import ApplySettings, BatchOptions, VideoSettings
from ..errors import StylizeError
from ..io.encode import write_image, write_image_to
from ..io.formats import is_video, output_extension_ok
from ..io.images import Photo, read_image
from .plan import FALLBACK_EXTENSION, STDIN_LABEL, STDIO, STDOUT_LABEL, Output, Task

if TYPE_CHECKING:
    from .renderer import Renderer


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


def run(stylizer: Renderer, tasks: Sequence[Task], settings: ApplySettings = ApplySettings(),
        options: BatchOptions = BatchOptions(), *, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None,
        on_result: Callable[[Result], None] | None = None, video: VideoSettings = VideoSettings(),
        on_frame: Callable[[Result, int, int | None], None] | None = None, early: EarlyRead | None = None) -> Summary:
    """Render every task; decoding and encoding overlap with the network.

    Up to ``options.workers`` photos are decoded ahead and at most ``2 * workers``
    outputs wait to be encoded, so memory stays bounded; with 0 workers each photo is
    read, rendered and written in turn, nothing overlapping. ``stdin`` / ``stdout`` are the
    streams for tasks reading ``-`` or writing to ``-``. Videos are streamed frame by
    frame, reporting ``on_frame(result so far, frames done, total or None)``. ``early``: a
    photo already being decoded, taken for the task that reads it. Ctrl-C stops after
    cancelling queued work; every file already written is complete.
    """
    summary = Summary()
    report = _Reporter(summary, on_result)
    start = time.perf_counter()
    if early is not None and not stylizer.arrays:
        early.drop()  # PyTorch takes tensors: it reads for itself, and the photo need not wait in memory
    with ThreadPoolExecutor(max(options.workers, 1), thread_name_prefix="stylize-io") as pool:
        writes: deque[tuple[Result, Future[tuple[float, bool]]]] = deque()
        try:
            for task, todo, reading in _read_ahead(pool, tasks, options, stdin, report, stylizer.arrays, early):
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
                report: _Reporter, arrays: bool, early: EarlyRead | None
                ) -> Iterator[tuple[Task, list[Output], Future[tuple[Photo, float]] | None]]:
    """Yield (task, outputs still to make, decoding future), keeping ``workers`` decodes in flight.

    Outputs that already exist are reported as skipped here, and a task with nothing
    left to make is never decoded. Videos, which stream their own frames, come with no future.
    Photos are decoded to numpy arrays when ``arrays`` (for a stylizer that takes them); the
    ``early`` one (numpy arrays) is taken rather than read again.
    """
    pending: deque[tuple[Task, list[Output], Future[tuple[Photo, float]] | None]] = deque()
    queue = iter(tasks)
    while True:
        while len(pending) < max(options.workers, 1):
            task = next(queue, None)
            if task is None:
                break
            read_early = early.take(task) if early is not None else None  # taken even if unused: freed
            todo = []
            for out in task.outputs:
                if not options.overwrite and out.destination is not None and out.destination.exists():
                    report(_result(task, out, "skipped", None, 0.0))
                else:
                    todo.append(out)
            if todo:
                if task.source is not None and is_video(task.source):
                    pending.append((task, todo, None))
                else:
                    pending.append((task, todo, read_early or pool.submit(_read, task.source, options, stdin, arrays)))
        if not pending:
            return
        yield pending.popleft()


class EarlyRead:
    """The first input photo, decoded while the model opens: a context manager.

    Opening the model (importing ONNX Runtime, making its session) keeps the main thread busy
    about as long as a photo takes to decode, and Pillow decodes without holding the GIL; so
    :func:`stylize.apply.job.apply` starts the decoding of its first input before it opens the
    model, and :func:`run` takes the result instead of reading the file again. Only a regular
    file that is no video is read early (never stdin, a folder or a pipe, which a read would
    use up). A renderer that takes tensors (PyTorch) reads for itself, as does a task other
    than the first: the early photo is then dropped (:meth:`drop`), as it is when its task has
    nothing to make (the output exists), so it never waits in memory through the run. On exit
    the thread is done: one left running would cost the command its quick exit
    (:func:`stylize.runtime.exit.exit_process`).
    """

    def __init__(self, source: str | None, options: BatchOptions) -> None:
        """Start decoding ``source`` (an input as the user named it; ``None``: read nothing early)."""
        self.path = Path(source) if source not in (None, STDIO) else None
        self._pool: ThreadPoolExecutor | None = None
        self._reading: Future[tuple[Photo, float]] | None = None
        if self.path is not None and not is_video(self.path) and self.path.is_file():
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="stylize-early")
            self._reading = self._pool.submit(_read, self.path, options, None, True)

    def take(self, task: Task) -> Future[tuple[Photo, float]] | None:
        """The decoding of ``task``'s photo if it is the one read early (once), else ``None``."""
        if self._reading is None or task.source != self.path:
            return None
        reading, self._reading = self._reading, None
        return reading

    def drop(self) -> None:
        """Forget the early photo (its decoding finishes, and the photo is freed)."""
        self._reading = None

    def __enter__(self) -> EarlyRead:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _read(source: Path | None, options: BatchOptions, stdin: BinaryIO | None, arrays: bool) -> tuple[Photo, float]:
    """The photo at ``source`` (``None``: stdin) and the seconds its decoding took."""
    tick = time.perf_counter()
    if source is None:
        if stdin is None:
            raise StylizeError("no stdin stream given for input '-'")
        photo = read_image(stdin, max_pixels=options.max_pixels, name=STDIN_LABEL, arrays=arrays)
    else:
        photo = read_image(source, max_pixels=options.max_pixels, arrays=arrays)
    return photo, time.perf_counter() - tick


def _video(stylizer: Renderer, task: Task, out: Output, settings: ApplySettings, video: VideoSettings,
           on_frame: Callable[[Result, int, int | None], None] | None, overwrite: bool) -> Result:
    """Render one video output (folders created as needed); a failure is reported, not raised,
    and a file another run finished there meanwhile is kept and reported skipped."""
    from .video import stylize_video  # here: a run of photos never loads the video module

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
