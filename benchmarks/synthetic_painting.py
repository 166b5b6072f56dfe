"""A painting that no shipped model was trained on, made from a seed.

The add-style and ``--style-image`` quality checks (issue 6) need a style outside the 22
paintings of ``weights/stylize-22``, and the project's data has no other public-domain
painting. This draws one: thousands of short, thick, round-capped brush strokes whose
directions follow a smooth swirling flow field, in a five-colour palette with per-stroke
jitter, over a two-colour gradient ground. It has what a style loss sees in a painting
(a palette, stroke size and orientation statistics, texture at several scales) and looks
like none of the 22. Same seed, same image, on any machine (Pillow and ``random`` only).

    python -m benchmarks.synthetic_painting -o swirls.png
"""

from __future__ import annotations

import argparse
import math
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

PALETTE = [(22, 60, 92), (224, 170, 58), (186, 52, 40), (240, 228, 196), (46, 120, 102)]
"""Indigo, ochre, vermilion, cream, viridian."""


def _flow(x: float, y: float, size: int) -> float:
    """Stroke direction (radians) at (x, y): a few interfering swirls, smooth over the canvas."""
    u, v = 2 * math.pi * x / size, 2 * math.pi * y / size
    return 1.7 * math.sin(1.3 * u + 0.7 * v) + 1.1 * math.cos(2.1 * v - 0.4 * u) + 0.6 * math.sin(3.3 * u)


def _jitter(colour: tuple[int, int, int], rng: random.Random, spread: int = 24) -> tuple[int, int, int]:
    return tuple(max(0, min(255, c + rng.randint(-spread, spread))) for c in colour)


def synthetic_painting(size: int = 512, seed: int = 0, strokes: int = 6000) -> Image.Image:
    """The ``size`` x ``size`` RGB painting for ``seed``."""
    rng = random.Random(seed)
    top, bottom = PALETTE[0], PALETTE[4]
    canvas = Image.new("RGB", (size, size))
    ground = ImageDraw.Draw(canvas)
    for row in range(size):
        t = row / (size - 1)
        ground.line([(0, row), (size, row)], fill=tuple(round(a + (b - a) * t) for a, b in zip(top, bottom)))
    draw = ImageDraw.Draw(canvas)
    scale = size / 512
    for _ in range(strokes):
        x, y = rng.uniform(0, size), rng.uniform(0, size)
        angle = _flow(x, y, size) + rng.gauss(0, 0.15)
        length = rng.uniform(10, 28) * scale
        width = max(1, round(rng.uniform(3, 8) * scale))
        dx, dy = math.cos(angle) * length / 2, math.sin(angle) * length / 2
        colour = _jitter(rng.choices(PALETTE, weights=[3, 2, 1, 2, 2])[0], rng)
        draw.line([(x - dx, y - dy), (x + dx, y + dy)], fill=colour, width=width, joint="curve")
        for end in ((x - dx, y - dy), (x + dx, y + dy)):  # round caps
            r = width / 2
            draw.ellipse([end[0] - r, end[1] - r, end[0] + r, end[1] + r], fill=colour)
    return canvas.filter(ImageFilter.GaussianBlur(0.6 * scale))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, required=True, help="image file to write (e.g. swirls.png)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    synthetic_painting(args.size, args.seed).save(args.output)


if __name__ == "__main__":
    main()
