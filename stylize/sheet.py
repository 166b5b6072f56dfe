"""Every style of a model on one photo, in a labelled grid, to choose a style by eye."""

from __future__ import annotations

import math
import textwrap
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFont

from .imageio import Photo, tensor_to_pil
from .render import ApplySettings

if TYPE_CHECKING:
    from .inference import Stylizer
    from .onnx_engine import OnnxStylizer

GAP = 6
"""Pixels between cells and around the sheet."""


def style_sheet(stylizer: Stylizer | OnnxStylizer, photo: Photo, *, cell: int = 256,
                columns: int | None = None) -> Image.Image:
    """The photo (first cell) and then every style, each rendered at long side ``cell``, labelled.

    ``columns`` defaults to a near-square grid. Rendering at the cell size (rather than
    rendering the full photo and shrinking it) shows the strokes at the size the sheet
    shows them, and keeps a sheet of many styles quick.
    """
    choices = stylizer.choose("all")
    unstyled = stylizer.stylize_photo(photo, choices[0], ApplySettings(strength=0.0, max_size=cell))  # the photo, resized
    cells = [("photo", tensor_to_pil(unstyled.rgb))]
    settings = ApplySettings(max_size=cell)
    for choice in choices:
        cells.append((choice.label, tensor_to_pil(stylizer.stylize_photo(photo, choice, settings).rgb)))
    columns = columns or math.ceil(math.sqrt(len(cells)))
    rows = math.ceil(len(cells) / columns)
    font = ImageFont.load_default(size=max(11, cell // 16))
    label_height = 2 * (max(11, cell // 16) + 4)
    width, height = max(c.width for _, c in cells), max(c.height for _, c in cells)
    sheet = Image.new("RGB", (GAP + columns * (width + GAP), GAP + rows * (height + label_height + GAP)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (label, image) in enumerate(cells):
        x = GAP + (i % columns) * (width + GAP)
        y = GAP + (i // columns) * (height + label_height + GAP)
        sheet.paste(image, (x + (width - image.width) // 2, y + (height - image.height) // 2))
        text = textwrap.fill(label.replace("_", " "), width=max(8, width // max(6, cell // 28)))
        draw.multiline_text((x + width // 2, y + height + 2), text, fill="black", font=font, anchor="ma",
                            align="center")
    return sheet
