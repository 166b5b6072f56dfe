"""Every style of a model on one photo, in a labelled grid, to choose a style by eye."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..config import DEFAULT_MAX_PIXELS, SHEET_CELL, ApplySettings
from ..errors import StylizeError
from ..io.encode import write_image
from ..io.formats import output_extension_ok
from ..io.images import Photo, read_image
from ..io.pixels import tensor_to_pil
from ..runtime.process import EngineOptions
from .open import open_renderer

if TYPE_CHECKING:
    from ..runtime.device import DeviceChoice
    from .renderer import Renderer

GAP = 6
"""Pixels between cells and around the sheet."""


def style_sheet(stylizer: Renderer, photo: Photo, *, cell: int = SHEET_CELL[1],
                columns: int | None = None) -> Image.Image:
    """The photo (first cell) and then every style, each rendered at long side ``cell``, labelled.

    ``columns`` defaults to a near-square grid. Rendering at the cell size (rather than
    rendering the full photo and shrinking it) shows the strokes at the size the sheet
    shows them, and keeps a sheet of many styles quick.
    """
    choices = stylizer.choose("all")
    columns = min(columns or math.ceil(math.sqrt(len(choices) + 1)), len(choices) + 1)
    rows = math.ceil((len(choices) + 1) / columns)
    label_height = 2 * (max(11, cell // 16) + 4)
    h, w = photo.rgb.shape[-2:]
    scale = min(1.0, cell / max(h, w))  # each cell is the photo at most cell px long
    size = _canvas_size(columns, rows, round(w * scale), round(h * scale), label_height)
    if size[0] * size[1] > DEFAULT_MAX_PIXELS:
        raise StylizeError(f"a sheet of {len(choices) + 1} cells, {columns} a row, at --cell {cell} would be "
                           f"{size[0]}x{size[1]} px ({size[0] * size[1] / 1e6:.0f} Mpx), over the "
                           f"{DEFAULT_MAX_PIXELS / 1e6:.1f} Mpx an image may have; "
                           "use a smaller --cell or fewer --columns")
    # The photo, resized as the styled cells are:
    unstyled = stylizer.stylize_photo(photo, choices[0], ApplySettings(strength=0.0, max_size=cell))
    cells = [("photo", tensor_to_pil(unstyled.rgb))]
    settings = ApplySettings(max_size=cell)
    for choice in choices:
        cells.append((choice.label, tensor_to_pil(stylizer.stylize_photo(photo, choice, settings).rgb)))
    font = ImageFont.load_default(size=max(11, cell // 16))
    width, height = max(c.width for _, c in cells), max(c.height for _, c in cells)
    sheet = Image.new("RGB", _canvas_size(columns, rows, width, height, label_height), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (label, image) in enumerate(cells):
        x = GAP + (i % columns) * (width + GAP)
        y = GAP + (i // columns) * (height + label_height + GAP)
        sheet.paste(image, (x + (width - image.width) // 2, y + (height - image.height) // 2))
        text = textwrap.fill(label.replace("_", " "), width=max(8, width // max(6, cell // 28)))
        draw.multiline_text((x + width // 2, y + height + 2), text, fill="black", font=font, anchor="ma",
                            align="center")
    return sheet


def _canvas_size(columns: int, rows: int, width: int, height: int, label_height: int) -> tuple[int, int]:
    """Width and height of a sheet of ``rows`` x ``columns`` cells of ``width`` x ``height`` px, labelled."""
    return GAP + columns * (width + GAP), GAP + rows * (height + label_height + GAP)


def write_sheet(photo: Path, output: Path, *, model: Path | None = None, cell: int = SHEET_CELL[1],
                columns: int | None = None, overwrite: bool = False, backend: str = "auto", device: str = "auto",
                engine: EngineOptions | None = EngineOptions(),
                on_device: Callable[[DeviceChoice], None] | None = None,
                on_make_graph: Callable[[Path], None] | None = None) -> list[str]:
    """``stylize sheet``: write :func:`style_sheet` of ``photo`` to ``output`` (atomically); the styles shown.

    Refused before any rendering: an ``output`` that cannot hold an image, that exists
    (unless ``overwrite``) or that is the photo itself.
    """
    if not output_extension_ok(output):
        raise StylizeError(f"-o {output}: use an image extension (.jpg, .png, ...)")
    if (output.exists() or output.is_symlink()) and not overwrite:  # a dangling link is a name taken too
        raise StylizeError(f"{output} exists; pass --overwrite to replace it")
    if output.resolve() == photo.resolve():
        raise StylizeError(f"-o {output} is the input photo; write the sheet to a new file")
    renderer = open_renderer(model, backend=backend, device=device, engine=engine, on_device=on_device,
                             on_make_graph=on_make_graph)
    picture = style_sheet(renderer, read_image(photo, arrays=renderer.arrays), cell=cell, columns=columns)
    if not write_image(output, np.asarray(picture, dtype=np.float32).transpose(2, 0, 1) / 255, overwrite=overwrite):
        raise StylizeError(f"{output} appeared while the sheet was made; kept it (pass --overwrite to replace it)")
    return renderer.styles
