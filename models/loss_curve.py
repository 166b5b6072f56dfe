"""Draw a training run's loss curve (from its ``.log.jsonl``) as a PNG for a model card.

    python models/loss_curve.py runs/stylize-22.log.jsonl -o models/stylize-22/loss.png

Each loss term is smoothed with a moving average (every step draws other photos and
styles, so raw values jump) and drawn on a log scale. Pillow only: no plotting library.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

TERMS = {"total": (20, 20, 20), "content": (31, 119, 180), "style": (214, 39, 40)}
"""The loss terms drawn, with their colours."""


def read_log(path: Path) -> list[dict[str, float]]:
    """The log's records, in step order."""
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return sorted(records, key=lambda r: r["step"])


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average over ``window`` records."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def draw(records: list[dict[str, float]], title: str, size: tuple[int, int] = (900, 500),
         window: int = 20) -> Image.Image:
    """The plot: steps on x, each term's smoothed value on a log-10 y axis, with a legend."""
    width, height = size
    left, right, top, bottom = 80, 20, 40, 50
    steps = [r["step"] for r in records]
    curves = {t: smooth([r[t] for r in records], window) for t in TERMS if all(r.get(t, 0) > 0 for r in records)}
    lo = math.floor(min(math.log10(min(c)) for c in curves.values()))
    hi = math.ceil(max(math.log10(max(c)) for c in curves.values()))
    x_max = max(steps)

    def xy(step: float, value: float) -> tuple[float, float]:
        x = left + (width - left - right) * step / x_max
        y = top + (height - top - bottom) * (hi - math.log10(value)) / max(hi - lo, 1)
        return x, y

    image = Image.new("RGB", size, "white")
    pen = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=14)
    for decade in range(lo, hi + 1):
        _, y = xy(0, 10.0 ** decade)
        pen.line([(left, y), (width - right, y)], fill=(225, 225, 225))
        pen.text((left - 8, y), f"1e{decade}", fill="black", font=font, anchor="rm")
    for i in range(6):
        x, _ = xy(x_max * i / 5, 10.0 ** hi)
        pen.text((x, height - bottom + 8), f"{round(x_max * i / 5):,}", fill="black", font=font, anchor="mt")
    pen.rectangle([left, top, width - right, height - bottom], outline="black")
    pen.text((width / 2, height - 16), "step", fill="black", font=font, anchor="mm")
    pen.text((width / 2, 18), title, fill="black", font=font, anchor="mm")
    for n, (term, values) in enumerate(curves.items()):
        colour = TERMS[term]
        pen.line([xy(s, v) for s, v in zip(steps, values)], fill=colour, width=2)
        x, y = width - right - 130, top + 20 + 18 * n
        pen.line([(x, y), (x + 24, y)], fill=colour, width=2)
        pen.text((x + 30, y), term, fill=colour, font=font, anchor="lm")
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path, help="the run's .log.jsonl")
    parser.add_argument("-o", "--output", type=Path, required=True, help="PNG to write")
    parser.add_argument("--title", default=None, help="plot title (default: the log's name)")
    parser.add_argument("--window", type=int, default=20, help="records in the moving average")
    args = parser.parse_args()
    records = read_log(args.log)
    title = args.title or f"{args.log.name}: loss ({args.window}-record moving average)"
    draw(records, title, window=args.window).save(args.output)


if __name__ == "__main__":
    main()
