"""Plain progress lines (stderr not a terminal) say how long is left, from the rate since the first update."""

import io

from stylize.cli import progress
from stylize.cli.progress import Progress


def test_plain_lines_estimate_the_time_left(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    stream = io.StringIO()
    bar = Progress(10, "step", desc="learning the style", initial=0, stream=stream, interval=0)
    for step, seconds in [(1, 100.0), (2, 102.0), (3, 104.0)]:  # 2 s a step since the first update
        now[0] = seconds
        bar.update(step)
    assert stream.getvalue().splitlines() == ["learning the style: 1/10 steps",
                                              "learning the style: 2/10 steps, about 16 s left",
                                              "learning the style: 3/10 steps, about 14 s left"]
