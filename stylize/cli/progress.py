"""What the command line says while it works: progress, ``-q``, ``-v`` and stage timings.

On a terminal, progress is a tqdm bar that redraws itself in place with ``\\r``. In a
redirected log that would pile every redraw into one endless line, so there a plain line
is written instead: at the first update, then at most every :data:`PLAIN_INTERVAL`
seconds, and at the end. Everything here writes to stderr, so stdout stays the
command's result (a listing, a table, an image on ``-``). Used by ``stylize.cli`` only:
the library reports through callbacks and never prints.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ..errors import printable

if TYPE_CHECKING:
    from tqdm import tqdm

    from ..apply.batch import Result
    from ..train.loop import StepReport

PLAIN_INTERVAL = 10.0
"""Seconds between two plain progress lines when stderr is not a terminal."""


class Progress:
    """A count towards a total: a bar on a terminal, a plain line now and then elsewhere."""

    def __init__(self, total: int | None, unit: str, *, desc: str = "", initial: int = 0, enabled: bool = True,
                 leave: bool = True, stream: TextIO | None = None, interval: float = PLAIN_INTERVAL) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.total, self.unit, self.desc, self.n = total, unit, desc, initial
        self.enabled, self.interval = enabled, interval
        self.postfix: dict[str, str] = {}
        self.bar: tqdm | None = None
        self._shown_at: float | None = None  # monotonic time of the last plain line
        self._shown_n: int | None = None
        self._first: tuple[float, int] | None = None  # time and count of the first update: the rate since
        if enabled and self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit=unit, desc=desc or None, leave=leave,
                            dynamic_ncols=True, file=self.stream)

    def update(self, n: int, postfix: Mapping[str, str] | None = None) -> None:
        """Set the count to ``n`` (and the figures shown beside it)."""
        self.n = n
        if self._first is None:
            self._first = (time.monotonic(), n)
        if postfix is not None:
            self.postfix = dict(postfix)
        if self.bar is not None:
            self.bar.n = n
            self.bar.set_postfix(self.postfix, refresh=False)
            self.bar.update(0)
        elif self.enabled and (self._shown_at is None or time.monotonic() - self._shown_at >= self.interval):
            self._line()

    def advance(self, by: int = 1) -> None:
        """Add ``by`` to the count."""
        self.update(self.n + by)

    def close(self) -> None:
        """End the bar; in plain mode, write the final count unless it was the last line."""
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and self._shown_n != self.n:
            self._line()

    def _line(self) -> None:
        count = f"{self.n}/{self.total}" if self.total else str(self.n)
        figures = "".join(f", {key} {value}" for key, value in self.postfix.items())
        if self._first is not None and self.total and self.total > self.n > self._first[1]:  # as tqdm shows it
            since, first = self._first
            left = (time.monotonic() - since) / (self.n - first) * (self.total - self.n)
            figures += f", about {left:.0f} s left"
        self.stream.write(f"{self.desc + ': ' if self.desc else ''}{count} {self.unit}s{figures}\n")
        self.stream.flush()
        self._shown_at, self._shown_n = time.monotonic(), self.n


@dataclass
class Verbosity:
    """``-q`` (errors and results only) or ``-v`` (also device, precision and stage timings)."""

    quiet: bool = False
    verbose: bool = False
    stages: dict[str, float] = field(default_factory=dict)
    """Seconds per stage, in the order they ran (for ``-v`` and ``--json``)."""

    @property
    def progress(self) -> bool:
        """Whether progress bars and lines are shown."""
        return not self.quiet

    def say(self, message: str, *, err: bool = False) -> None:
        """A status line (``saved ...``, a summary) on stdout or stderr, silenced by ``-q``.

        Escaped like every line that may quote a file name or a style name (:func:`~stylize.errors.printable`).
        """
        if not self.quiet:
            print(printable(message), file=sys.stderr if err else sys.stdout, flush=True)

    def detail(self, message: str) -> None:
        """A ``-v`` line on stderr."""
        if self.verbose:
            print(printable(message), file=sys.stderr, flush=True)

    def record(self, name: str, seconds: float) -> None:
        """Add ``seconds`` to a stage; ``-v`` prints its total so far."""
        self.stages[name] = self.stages.get(name, 0.0) + seconds
        self.detail(f"{name}: {self.stages[name]:.2f} s")

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage that completes (one that raises is not recorded)."""
        start = time.perf_counter()
        yield
        self.record(name, time.perf_counter() - start)


class StepBar:
    """A training loop's ``on_step`` callback that shows progress (quiet with ``-q`` and where not ``main``,
    the non-zero ranks of a torchrun job).

    The bar opens at the first step, so an error before it (a bad file, a missing
    folder) is the only line printed, and its total is the run's, known only once a
    checkpoint's settings are read. The time until then is the ``setup`` stage
    (photos, paintings, loss network), the rest ``steps``.
    """

    def __init__(self, say: Verbosity, desc: str, main: bool = True) -> None:
        self.say, self.desc, self.main = say, desc, main
        self.bar: Progress | None = None
        self.started = time.perf_counter()

    def __call__(self, report: StepReport) -> None:
        if self.bar is None:
            self.say.record("setup", time.perf_counter() - self.started)
            self.started = time.perf_counter()
            self.bar = Progress(report.steps, "step", desc=self.desc, initial=report.step - 1,
                                enabled=self.say.progress and self.main)
        self.bar.update(report.step, {"img/s": f"{report.images_per_s:.3g}",
                                      **{k: f"{v:.3g}" for k, v in report.losses.items()}})

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.say.record("steps", time.perf_counter() - self.started)


class FrameBar:
    """``apply``'s ``on_frame`` callback: progress over the frames of each video in turn."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Progress | None = None
        self.video: Result | None = None

    def __call__(self, result: Result, done: int, total: int | None) -> None:
        if self.video is not result:
            self.close()
            self.video = result
            self.bar = Progress(total, "frame", desc=Path(result.input).name, enabled=self.enabled, leave=False)
        self.bar.update(done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class TileProgress:
    """A renderer's ``on_tile``: a progress count for each photo rendered in tiles (large photos).

    One bar per photo; a photo small enough for one pass reports nothing.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Progress | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None or done <= self.bar.n:
            self.close()
            self.bar = Progress(total, "tile", desc="tiles", enabled=self.enabled, leave=False)
        self.bar.update(done)
        if done == total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
