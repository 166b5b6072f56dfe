"""Preview grids: one photo rendered in every style, written during training."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from ..errors import StylizeError
from ..io.encode import write_image
from ..io.images import read_image
from ..io.pixels import resize_long_side
from ..model.network import StyleNet
from .data import photo_files

PREVIEW_SIZE = 384
"""Long side of the preview photo: large enough to judge strokes, small enough to be quick."""


def preview_image(photo: Tensor | None, content: Path | Sequence[Path]) -> Tensor:
    """The preview photo at :data:`PREVIEW_SIZE`: the given one, else the first content photo
    that can be read (the data loader skips and reports the others)."""
    for path in [] if photo is not None else photo_files(content):
        try:
            photo = read_image(path).rgb
            break
        except StylizeError:
            continue
    if photo is None:
        raise StylizeError(f"no content photo can be read for the previews in {content}")
    return resize_long_side(photo, PREVIEW_SIZE)


@torch.no_grad()
def render_grid(net: StyleNet, photo: Tensor, style_ids: Tensor, columns: int = 6) -> Tensor:
    """The photo followed by its rendering in each style, tiled ``columns`` wide, (3,H,W)."""
    from torchvision.utils import make_grid

    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    x = photo[None].to(device)
    tiles = [photo.cpu()] + [net(x, int(i))[0].float().cpu() for i in style_ids]
    net.train(was_training)
    return make_grid(torch.stack(tiles), nrow=min(columns, len(tiles)), padding=4, pad_value=1.0)


def write_preview(path: Path, net: StyleNet, photo: Tensor, style_ids: Tensor) -> None:
    """Render and atomically write a preview grid to ``path`` (its folder is created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, render_grid(net, photo, style_ids), quality=90)
