"""Draw a training run's loss curve (from its ``.log.jsonl``) as a PNG for a model card.

    python models/loss_curve.py runs/stylize-22.log.jsonl -o models/stylize-22/loss.png

Each loss term is smoothed with a moving average (every step draws other photos and
styles, so raw values jump) and drawn on a log scale. Pillow only: no plotting library.
When the log has per-style losses (``styles``, written by ``stylize train``), a second
panel below draws each style's style loss relative to where it started: a style that
falls apart while the mean goes down rises there, labelled.
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


def draw_styles(records: list[dict], size: tuple[int, int] = (900, 400), window: int = 20,
                labelled: int = 5) -> Image.Image:
    """Each style's smoothed style loss divided by its first smoothed value, on a linear axis;
    up to ``labelled`` of the styles that end more than 5% above their start are drawn in red and named."""
    width, height = size
    left, right, top, bottom = 80, 190, 30, 40
    names = sorted({name for r in records for name in r.get("styles", {})})
    curves = {}
    for name in names:
        points = [(r["step"], r["styles"][name]) for r in records if name in r.get("styles", {})]
        values = smooth([v for _, v in points], window)
        curves[name] = [(step, v / values[0]) for (step, _), v in zip(points, values)]
    lo = min(v for c in curves.values() for _, v in c)
    hi = max(v for c in curves.values() for _, v in c)
    x0, x1 = min(r["step"] for r in records), max(r["step"] for r in records)

    def xy(step: float, value: float) -> tuple[float, float]:
        x = left + (width - left - right) * (step - x0) / max(x1 - x0, 1)
        y = top + (height - top - bottom) * (hi - value) / max(hi - lo, 1e-9)
        return x, y

    image = Image.new("RGB", size, "white")
    pen = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=12)
    pen.rectangle([left, top, width - right, height - bottom], outline="black")
    for value in (lo, 1.0, hi):
        _, y = xy(x0, value)
        pen.line([(left, y), (width - right, y)], fill=(225, 225, 225))
        pen.text((left - 8, y), f"x{value:.2f}", fill="black", font=font, anchor="rm")
    pen.text((width / 2, 14), "each style's style loss / its first value", fill="black", font=font, anchor="mm")
    ending = sorted(curves, key=lambda name: curves[name][-1][1], reverse=True)
    rising = {name for name in ending[:labelled] if curves[name][-1][1] > 1.05}
    for name in reversed(ending):  # the rising ones drawn last, on top
        top_rank = name in rising
        colour = (214, 39, 40) if top_rank else (170, 170, 170)
        pen.line([xy(step, v) for step, v in curves[name]], fill=colour, width=2 if top_rank else 1)
        if top_rank:
            x, y = xy(*curves[name][-1])
            pen.text((x + 6, y), f"{name} x{curves[name][-1][1]:.2f}", fill=colour, font=font, anchor="lm")
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
    image = draw(records, title, window=args.window)
    if any("styles" in r for r in records):
        panel = draw_styles(records, window=args.window)
        both = Image.new("RGB", (image.width, image.height + panel.height), "white")
        both.paste(image, (0, 0))
        both.paste(panel, (0, image.height))
        image = both
    image.save(args.output)


if __name__ == "__main__":
    main()
