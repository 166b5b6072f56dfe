"""Edge-band energy: does a render carry a line along its borders? Per side, per style, per border.

The band of a side is its 2 outermost pixel lines; its energy is the mean |pixel - the mean of
the 6 lines just inside it| (8-bit levels, over the band's pixels and the 3 channels). A line
the network paints along an edge (The Scream's thin red line on the right) raises it above
what the painted texture gives anywhere else, so each side's figure comes with the same
measure taken :data:`INSIDE` px further in, where no edge is near: the texture's own level.
Renders go through :class:`~stylize.apply.onnx_backend.OnnxStylizer` (the CPU's apply path),
photos trimmed by :data:`TRIM` px and resized to a long side of ``--size`` px, with each ``--borders`` value as ``ApplySettings.border``. Run:

    python -m benchmarks.edge_band --styles the_scream,starry_night --borders 0,16 --threads 1 \
        --photos ../shared/data/content/test --limit 6

``--save DIR`` also writes each render as PNG, to look at the edges.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from stylize.apply.onnx_backend import OnnxStylizer
from stylize.apply.renderer import Renderer
from stylize.config import ApplySettings
from stylize.io.encode import write_image
from stylize.io.images import read_image

BAND = 2
"""Outermost pixel lines that make a side's band."""

REFERENCE = 6
"""Lines just inside the band that it is compared with."""

INSIDE = 16
"""How far in (px) the same measure is taken for the texture's own level."""

TRIM = 8
"""Pixels cut off every side of a photo first: scanned photos (Kodak's) carry lines of their own
there (kodim01 a white column 5 px from its right edge, a black bottom row)."""

SIDES = ("left", "right", "top", "bottom")


def toward_edge(image: np.ndarray, side: str) -> np.ndarray:
    """(3, H, W) -> (3, lines, length): the image's lines counted from ``side`` inward."""
    lines = {"left": image.transpose(0, 2, 1), "right": image[:, :, ::-1].transpose(0, 2, 1),
             "top": image, "bottom": image[:, ::-1]}
    return lines[side]


def band_energy(image: np.ndarray, side: str, depth: int = 0) -> float:
    """Mean |pixel - mean of the 6 lines inside| over the 2 lines ``depth`` px in from ``side``
    ((3, H, W) floats in [0, 1]; the result in 8-bit levels)."""
    lines = toward_edge(image, side)[:, depth:depth + BAND + REFERENCE]
    reference = lines[:, BAND:].mean(axis=1, keepdims=True)
    return float(np.abs(lines[:, :BAND] - reference).mean() * 255)


def edge_profile(image: np.ndarray) -> dict[str, tuple[float, float]]:
    """Per side: (the band's energy, the same :data:`INSIDE` px further in)."""
    return {side: (band_energy(image, side), band_energy(image, side, INSIDE)) for side in SIDES}


def load(photo: Path, size: int, stylizer: Renderer) -> Any:
    """A photo trimmed by :data:`TRIM` px and resized to a long side of ``size``, as ``stylizer``'s pixels."""
    return stylizer.resize(stylizer.pixels(read_image(photo, arrays=True).rgb[:, TRIM:-TRIM, TRIM:-TRIM]), size)


def measure(stylizer: Renderer, images: list[Any], style: str, border: int,
            save: Callable[[int, np.ndarray], None] | None = None) -> dict[str, tuple[float, float]]:
    """Each side's (band, inside) energy, averaged over ``images`` rendered in ``style`` with ``border``;
    ``save(index, render)`` is called with every render."""
    settings = ApplySettings(border=border)
    choice = stylizer.choose(style)[0]
    profiles = []
    for index, image in enumerate(images):
        out = np.asarray(stylizer.stylize(image, choice, settings))
        profiles.append(edge_profile(out))
        if save is not None:
            save(index, out)
    return {side: (float(np.mean([p[side][0] for p in profiles])), float(np.mean([p[side][1] for p in profiles])))
            for side in SIDES}


def ratios(profile: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Per side: the band's energy over the inside figure (1: the edge is like the rest of the picture)."""
    return {side: band / inside for side, (band, inside) in profile.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="checkpoint (default: the shipped stylize-22)")
    parser.add_argument("--styles", default="the_scream,starry_night")
    parser.add_argument("--borders", default="0,16")
    parser.add_argument("--photos", type=Path, required=True, help="folder of photos (sorted by name)")
    parser.add_argument("--limit", type=int, default=6, help="first N photos")
    parser.add_argument("--size", type=int, default=1024, help="long side of the renders")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads")
    parser.add_argument("--save", type=Path, default=None, help="also write every render here as PNG")
    args = parser.parse_args()
    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:args.limit]
    stylizer = OnnxStylizer.load(args.model, threads=args.threads)
    images = [load(photo, args.size, stylizer) for photo in photos]
    results = {}
    for style in args.styles.split(","):
        for border in [int(b) for b in args.borders.split(",")]:
            def save(index: int, out: np.ndarray, style: str = style, border: int = border) -> None:
                args.save.mkdir(parents=True, exist_ok=True)
                write_image(args.save / f"{photos[index].stem}-{style}-border{border}.png", out)

            results[style, border] = measure(stylizer, images, style, border, save if args.save else None)
    print(f"{len(photos)} photos at {args.size} px; band energy (8-bit levels), inside {INSIDE} px in parentheses")
    print("| style | border | " + " | ".join(SIDES) + " |")
    print("|---|---:|" + "---:|" * len(SIDES))
    for (style, border), profile in results.items():
        cells = " | ".join(f"{band:.1f} ({inside:.1f})" for band, inside in profile.values())
        print(f"| {style} | {border} | {cells} |")


if __name__ == "__main__":
    main()
