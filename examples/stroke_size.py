"""Make the README's stroke-size comparison: a 2048 px photo with and without the working size.

The network paints strokes of a fixed size in pixels. ``stylize apply`` therefore paints
photos longer than the working size (the style's own, else 1024 px) at that size and adds the photo's
detail back at full resolution, so that at screen size a large photo looks as its ~1000 px
version does. This sheet shows, each scaled down to the same screen size: the photo at
1024 px stylized as is; the photo at 2048 px stylized at full resolution (``--work-size 0``,
the network's native strokes, a fine hatching once scaled down); the 2048 px photo painted at
1024 px; and, for a style with a working size of its own (``stylize styles`` lists them; Great
Wave's is 512), the 2048 px photo with it, the default::

    python examples/stroke_size.py                       # -> examples/stroke-size.jpg

The photo (``examples/photos``, public domain or CC0) is upscaled to 2048 px for the demo.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

from gallery import thumbnail  # examples/ is on sys.path when this file is run
from stylize import Stylizer
from stylize.config import WORK_SIZE

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="checkpoint (default: the shipped model)")
    parser.add_argument("--photo", type=Path, default=HERE / "photos" / "chelsea.jpg")
    parser.add_argument("--style", default="great_wave")
    parser.add_argument("--height", type=int, default=400, help="height of each panel (screen size)")
    parser.add_argument("--out", type=Path, default=HERE / "stroke-size.jpg")
    args = parser.parse_args()

    stylizer = Stylizer.load(args.model, device="cpu")
    photo = ImageOps.exif_transpose(Image.open(args.photo)).convert("RGB")
    large = photo.resize((2048, round(2048 * photo.height / photo.width)), Image.Resampling.BICUBIC)
    medium = large.resize((1024, round(1024 * large.height / large.width)), Image.Resampling.LANCZOS)
    own = stylizer.work_sizes.get(stylizer.choose(args.style)[0].label)
    panels = [
        ("1024 px photo", stylizer.apply(medium, style=args.style, work_size=WORK_SIZE)),
        ("2048 px, --work-size 0 (native strokes)", stylizer.apply(large, style=args.style, work_size=0)),
        (f"2048 px, --work-size {WORK_SIZE}", stylizer.apply(large, style=args.style, work_size=WORK_SIZE)),
    ]
    if own is not None and own != WORK_SIZE:
        panels.append((f"2048 px, default (the style's own: {own or 'full'})", stylizer.apply(large, style=args.style)))
    font = ImageFont.load_default(size=max(12, args.height // 20))
    caption, gap = args.height // 12, 6
    images = [thumbnail(image, args.height) for _, image in panels]
    sheet = Image.new("RGB", (sum(i.width for i in images) + gap * (len(images) - 1), args.height + caption), "white")
    draw = ImageDraw.Draw(sheet)
    x = 0
    for (label, _), image in zip(panels, images):
        sheet.paste(image, (x, caption))
        draw.text((x + image.width // 2, caption // 2), label, fill="black", font=font, anchor="mm")
        x += image.width + gap
    sheet.save(args.out, quality=85)


if __name__ == "__main__":
    main()
