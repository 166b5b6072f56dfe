"""Make the README's gallery: a contact sheet (photos x every style) and a few full-size results.

It uses only the public Python API, so it doubles as an example of it::

    python examples/gallery.py                                   # the shipped model, examples/photos/
    python examples/gallery.py --model my.safetensors --out my-gallery/

The photos in ``examples/photos/`` are public domain or CC0 (see its CREDITS.md), so the
results may be committed; the paintings themselves are not, only their names.
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

from stylize import Stylizer
from stylize.train.data import list_images

HERE = Path(__file__).resolve().parent
FULL_SIZE = {"chelsea": "starry_night", "astronaut": "the_scream", "coffee": "great_wave", "rocket": "udnie"}
"""The full-size results: photo stem -> style."""


def thumbnail(image: Image.Image, height: int) -> Image.Image:
    """``image`` scaled to ``height`` rows, aspect kept."""
    width = round(image.width * height / image.height)
    return image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)


def contact_sheet(stylizer: Stylizer, photos: list[Image.Image], *, cell: int, max_size: int) -> Image.Image:
    """One row of originals, then one row per style: label on the left, the photos beside it."""
    font = ImageFont.load_default(size=max(12, cell // 9))
    originals = [thumbnail(p, cell) for p in photos]
    label_width, gap = cell * 3 // 2, 4
    width = label_width + sum(o.width + gap for o in originals)
    rows = [("photo", originals)]
    for style in stylizer.styles:
        rows.append((style, [thumbnail(stylizer.apply(p, style=style, max_size=max_size), cell) for p in photos]))
    sheet = Image.new("RGB", (width, len(rows) * (cell + gap)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (label, images) in enumerate(rows):
        y = r * (cell + gap)
        text = textwrap.fill(label.replace("_", " "), width=14)
        draw.multiline_text((6, y + cell // 2), text, fill="black", font=font, anchor="lm")
        x = label_width
        for image in images:
            sheet.paste(image, (x, y))
            x += image.width + gap
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="checkpoint (default: the shipped model)")
    parser.add_argument("--photos", type=Path, default=HERE / "photos")
    parser.add_argument("--out", type=Path, default=HERE / "gallery")
    parser.add_argument("--cell", type=int, default=160, help="thumbnail height in the contact sheet")
    parser.add_argument("--sheet-size", type=int, default=384, help="long side the sheet's photos are stylized at")
    parser.add_argument("--full-size", type=int, default=768, help="long side of the full-size results")
    args = parser.parse_args()

    stylizer = Stylizer.load(args.model, device="cpu")
    paths = list_images(args.photos, "photo")
    # Decoded once, upright (as `stylize apply` reads them), and reused for every style.
    photos = [ImageOps.exif_transpose(Image.open(p)) for p in paths]
    args.out.mkdir(parents=True, exist_ok=True)
    contact_sheet(stylizer, photos, cell=args.cell, max_size=args.sheet_size).save(
        args.out / "contact-sheet.jpg", quality=88)
    for path, photo in zip(paths, photos):
        style = FULL_SIZE.get(path.stem)
        if style in stylizer.styles:
            result = stylizer.apply(photo, style=style, max_size=args.full_size)
            result.convert("RGB").save(args.out / f"{path.stem}-{style}.jpg", quality=90)


if __name__ == "__main__":
    main()
