"""The grid measure of the fast student's card: how regular the texture painted into a flat sky is.

Each model renders PHOTO (long side ``--size``) in each style; in ``--box`` (a flat patch,
sky) the render's luma less its Gaussian blur of radius 3 (what is left: strokes, and any
grid) goes through a 2-D Fourier transform. The figure is the share of that residual's
energy in its 4 strongest frequencies (two conjugate pairs): strokes spread their energy
over many frequencies, a pattern that repeats at a fixed period puts it into a few, so a
grid raises the share and the teacher's strokes keep it low. Public API only (``Stylizer``, as
``compare_sheet.py`` loads and sizes them).

    python models/grid_measure.py --photo kodim21.jpg --size 1024 --box 608,0,864,192 \
        --model teacher=weights/stylize-22.safetensors --model fast=weights/stylize-22-fast.safetensors \
        --styles starry_night,the_scream,composition_vii,udnie

prints a Markdown table, a row a style and a column a model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from compare_sheet import load_models, photo_at  # the same folder: scripts run from there

PEAKS = 4


def grid_share(patch: Image.Image) -> float:
    """Share of the fine residual's spectral energy (DC aside) in its :data:`PEAKS` strongest frequencies."""
    luma = patch.convert("L")
    residual = np.asarray(luma, np.float64) - np.asarray(luma.filter(ImageFilter.GaussianBlur(3)), np.float64)
    energy = np.abs(np.fft.fft2(residual - residual.mean())) ** 2
    energy[0, 0] = 0.0
    return float(np.sort(energy, axis=None)[-PEAKS:].sum() / energy.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=Path, required=True)
    parser.add_argument("--model", action="append", required=True, help="LABEL=CHECKPOINT (repeat)")
    parser.add_argument("--styles", required=True, help="comma-separated styles")
    parser.add_argument("--size", type=int, default=1024, help="long side the photo is rendered at")
    parser.add_argument("--box", required=True, help="LEFT,TOP,RIGHT,BOTTOM of the flat patch, in the rendered photo")
    args = parser.parse_args()

    box = tuple(int(v) for v in args.box.split(","))
    models = load_models(args.model)
    photo = photo_at(args.photo, args.size)
    print(f"| style (photo's own {grid_share(photo.crop(box)):.3f}) | " + " | ".join(label for label, _ in models) + " |")
    print("|---" * (len(models) + 1) + "|")
    for style in args.styles.split(","):
        shares = [grid_share(stylizer.apply(photo, style=style).crop(box)) for _, stylizer in models]
        print(f"| {style} | " + " | ".join(f"{share:.3f}" for share in shares) + " |")


if __name__ == "__main__":
    main()
