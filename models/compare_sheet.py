"""Sheets to judge recipes by eye: several checkpoints on one photo, each style beside its painting.

Each row is a style: its painting, then for each checkpoint the photo rendered at ``--size``
(long side) shown whole, and a 1:1 crop from its centre, where strokes are seen at the pixel
size a user gets. Public API only (``Stylizer``).

    python models/compare_sheet.py --photo PHOTO --paintings DIR -o sheet.jpg \
        --model A=runs/ablation/A.safetensors --model C=runs/ablation/C.safetensors [--size 1024]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from stylize import Stylizer


def fit_height(image: Image.Image, height: int) -> Image.Image:
    return image.convert("RGB").resize((round(image.width * height / image.height), height), Image.Resampling.LANCZOS)


def centre_crop(image: Image.Image, side: int) -> Image.Image:
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return image.crop((left, top, left + side, top + side))


def load_models(specs: list[str]) -> list[tuple[str, Stylizer]]:
    """``LABEL=CHECKPOINT`` strings as (label, stylizer) pairs, on the CPU."""
    return [(label, Stylizer.load(path, device="cpu")) for label, path in (spec.split("=", 1) for spec in specs)]


def photo_at(path: Path, size: int) -> Image.Image:
    """The photo as RGB, resized (Lanczos) to a long side of ``size`` px."""
    photo = Image.open(path).convert("RGB")
    scale = size / max(photo.size)
    return photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.Resampling.LANCZOS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=Path, required=True)
    parser.add_argument("--paintings", type=Path, required=True, help="folder with STYLE.jpg for each style")
    parser.add_argument("--model", action="append", required=True, help="LABEL=CHECKPOINT (repeat)")
    parser.add_argument("--styles", help="comma-separated styles (default: those of the first model)")
    parser.add_argument("--size", type=int, default=1024, help="long side the photo is rendered at")
    parser.add_argument("--cell", type=int, default=320, help="row height")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()

    models = load_models(args.model)
    styles = args.styles.split(",") if args.styles else models[0][1].styles
    photo = photo_at(args.photo, args.size)
    font = ImageFont.load_default(size=18)
    rows = []
    for style in styles:
        painting = next(args.paintings.glob(f"{style}.*"))
        cells = [("painting", fit_height(Image.open(painting), args.cell))]
        for label, stylizer in models:
            out = stylizer.apply(photo, style=style)
            cells += [(label, fit_height(out, args.cell)), (f"{label} 1:1", centre_crop(out, args.cell))]
        rows.append((style, cells))
    gap = 6
    width = max(sum(c.width + gap for _, c in cells) for _, cells in rows)
    sheet = Image.new("RGB", (width, len(rows) * (args.cell + gap + 24)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (style, cells) in enumerate(rows):
        y, x = r * (args.cell + gap + 24), 0
        for label, image in cells:
            draw.text((x + 4, y + 2), f"{style}: {label}" if label == "painting" else label, fill="black", font=font)
            sheet.paste(image, (x, y + 24))
            x += image.width + gap
    args.output.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.output, quality=90)


if __name__ == "__main__":
    main()
