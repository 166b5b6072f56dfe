"""Blotches and halos: a number for each of the two artifacts a blind judge saw, per style and photo.

* **Blotches** (yellow patches in skies, on a sleeve): the share of the picture (%) that the render
  paints flat and bright where the photo gives the network nothing to work with, i.e. pixels
  whose render is bright (luma above :data:`BRIGHT`) and flat (local standard deviation below
  :data:`FLAT`) while the photo there is smooth (below :data:`SMOOTH`) or clipped (luma above
  :data:`CLIPPED`).
* **Halos** (a light or dark band traced around the main subject): the mean brightness deviation
  (8-bit levels) of the render from the photo, blurred so that strokes average out, less its
  local baseline (the same blurred wider), in a band :data:`NEAR` px from strong photo edges
  against the same far (over :data:`FAR` px) from them. Without a halo the two are alike.

``--dither AMOUNT`` also renders every photo with seeded Gaussian noise of that standard
deviation added where the photo is flat or clipped (what the network's norm can work with), to
see whether the blotches are the missing input variation. Renders go through
:class:`~stylize.apply.onnx_backend.OnnxStylizer`, photos resized to a long side of ``--size`` px. Run:

    python -m benchmarks.artifacts --styles starry_night,the_scream --photos ../shared/data/content/test \
        --match sunhays80 --threads 1 [--dither 0.03] [--save DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from stylize.apply.onnx_backend import OnnxStylizer
from stylize.apply.tiling import luma
from stylize.config import ApplySettings
from stylize.io.encode import write_image
from stylize.io.images import read_image

WINDOW = 4
"""Radius (px) of the window of the local standard deviation."""

FLAT = 0.005
"""Local standard deviation of the render's luma (in [0, 1]) below which it is flat: about 1 level of 8
bits, which painted strokes never are (the barn's olive sky patch: 0.0006)."""

SMOOTH = 0.02
"""Local standard deviation of the photo's luma below which it is smooth: about 5 levels."""

BRIGHT = 0.5
"""Render luma above which a flat region is a bright blotch (the barn's sky patch: 0.6)."""

CLIPPED = 0.97
"""Photo luma above which the photo is clipped (a blown-out highlight)."""

EDGE = 0.25
"""Photo luma gradient (per px, Sobel / 8) above which an edge is strong."""

NEAR = (2, 12)
"""The halo band: this far (px, Chebyshev distance) from a strong edge, the edge itself left out."""

FAR = 24
"""Farther than this (px) from every strong edge is far."""

BLUR = 4
"""Radius (px) of the box blur, applied twice, that averages strokes out of the halo measure."""

BASE = 24
"""Radius (px) of the box blur, applied twice, of the local baseline a halo stands out from: an
area's overall tint (a blotch, a darker sky) is not a halo."""


def box(image: np.ndarray, radius: int) -> np.ndarray:
    """(H, W) mean over a (2r+1)^2 window, edges replicated (an integral image, no dependencies)."""
    padded = np.pad(image.astype(np.float64), radius + 1, mode="edge")
    total = padded.cumsum(0).cumsum(1)
    size = 2 * radius + 1
    window = total[size:, size:] - total[:-size, size:] - total[size:, :-size] + total[:-size, :-size]
    return (window / size ** 2)[:image.shape[0], :image.shape[1]]


def local_std(image: np.ndarray, radius: int = WINDOW) -> np.ndarray:
    """(H, W) standard deviation over a (2r+1)^2 window."""
    mean = box(image, radius)
    return np.sqrt(np.maximum(box(image * image.astype(np.float64), radius) - mean ** 2, 0))


def flat_input(photo: np.ndarray) -> np.ndarray:
    """(H, W) mask of where the photo (3, H, W) is smooth or clipped: nothing for the network to paint with."""
    light = luma(photo)[0]
    return (local_std(light) < SMOOTH) | (light > CLIPPED)


def blotches(photo: np.ndarray, render: np.ndarray) -> float:
    """% of the picture painted flat and bright where the photo is smooth or clipped."""
    light = luma(render)[0]
    blotch = (light > BRIGHT) & (local_std(light) < FLAT) & flat_input(photo)
    return float(blotch.mean() * 100)


def near_edges(photo: np.ndarray, radius: int) -> np.ndarray:
    """(H, W) mask of the pixels within ``radius`` px of a strong edge of the photo."""
    light = np.pad(luma(photo)[0], 1, mode="edge")
    gx = (light[:-2, 2:] + 2 * light[1:-1, 2:] + light[2:, 2:] - light[:-2, :-2] - 2 * light[1:-1, :-2]
          - light[2:, :-2]) / 8
    gy = (light[2:, :-2] + 2 * light[2:, 1:-1] + light[2:, 2:] - light[:-2, :-2] - 2 * light[:-2, 1:-1]
          - light[:-2, 2:]) / 8
    edges = np.hypot(gx, gy) > EDGE
    return box(edges.astype(np.float64), radius) > 0 if radius else edges


def halos(photo: np.ndarray, render: np.ndarray) -> tuple[float, float]:
    """Mean |render luma - photo luma|, blurred, less the same blurred over :data:`BASE` px (8-bit
    levels), near strong photo edges and far from them."""
    difference = luma(render)[0] - luma(photo)[0]
    deviation = np.abs(box(box(difference, BLUR), BLUR) - box(box(difference, BASE), BASE)) * 255
    near = near_edges(photo, NEAR[1]) & ~near_edges(photo, NEAR[0])
    far = ~near_edges(photo, FAR)
    return (float(deviation[near].mean()) if near.any() else float("nan"),
            float(deviation[far].mean()) if far.any() else float("nan"))


def dithered(photo: np.ndarray, amount: float, seed: int = 0) -> np.ndarray:
    """The photo with seeded Gaussian noise (standard deviation ``amount``) where it is flat or clipped."""
    noise = np.random.default_rng(seed).normal(0, amount, photo.shape).astype(np.float32)
    return np.clip(photo + noise * flat_input(photo), 0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="checkpoint (default: the shipped stylize-22)")
    parser.add_argument("--styles", default="starry_night,the_scream")
    parser.add_argument("--photos", type=Path, required=True, help="folder of photos (sorted by name)")
    parser.add_argument("--match", default="", help="only photos whose name contains this")
    parser.add_argument("--limit", type=int, default=0, help="first N photos (0: all)")
    parser.add_argument("--size", type=int, default=1024, help="long side of the renders")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads")
    parser.add_argument("--dither", type=float, default=0.0, help="also render with this much noise in flat areas")
    parser.add_argument("--save", type=Path, default=None, help="also write every render here as PNG")
    args = parser.parse_args()
    photos = sorted(p for p in args.photos.iterdir()
                    if p.suffix.lower() in (".jpg", ".jpeg", ".png") and args.match in p.name)
    photos = photos[:args.limit] if args.limit else photos
    stylizer = OnnxStylizer.load(args.model, threads=args.threads)
    variants = [("", 0.0)] + ([(f" dither {args.dither}", args.dither)] if args.dither else [])
    print(f"{len(photos)} photos at {args.size} px; blotches: % of area; halos: deviation near / far from edges")
    print("| photo | style | blotches % | halo near | halo far |")
    print("|---|---|---:|---:|---:|")
    for path in photos:
        photo = stylizer.resize(read_image(path, arrays=True).rgb, args.size)
        for style in args.styles.split(","):
            for label, amount in variants:
                render = stylizer.stylize(dithered(photo, amount) if amount else photo, stylizer.choose(style)[0],
                                          ApplySettings())
                near, far = halos(photo, render)
                print(f"| {path.stem} | {style}{label} | {blotches(photo, render):.2f} | {near:.1f} | {far:.1f} |",
                      flush=True)
                if args.save is not None:
                    args.save.mkdir(parents=True, exist_ok=True)
                    write_image(args.save / f"{path.stem}-{style}{label.replace(' ', '-')}.png", render)


if __name__ == "__main__":
    main()
