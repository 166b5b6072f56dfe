"""Training data: style paintings, content photos, and a deterministic batch plan.

Every random choice of a training step (which photos, where to crop, whether to flip,
which style each sample gets) is drawn from a generator seeded by ``(seed, step)``.
That makes a run reproducible, makes ``--resume`` continue the same sequence, and lets
``N`` distributed ranks each take their slice of the *same* global batch, so N ranks
train exactly what one process would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from ..errors import StylizeError, first_line
from ..io.formats import SUPPORTED_EXTENSIONS
from ..io.images import CORRUPT_DATA_ERRORS, check_pixels, read_image
from ..io.pixels import resize_long_side


def list_images(folder: Path, what: str) -> list[Path]:
    """Image files under ``folder`` (recursively, sorted), or a clear error if there are none."""
    folder = Path(folder)
    if not folder.exists():
        raise StylizeError(f"{what} folder {folder} does not exist")
    if not folder.is_dir():
        raise StylizeError(f"{what} folder {folder} is not a directory")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_EXTENSIONS)
    if not files:
        exts = ", ".join(sorted(SUPPORTED_EXTENSIONS))
        raise StylizeError(f"{what} folder {folder} has no images ({exts})")
    return files


def photo_files(photos: Path | Sequence[Path]) -> list[Path]:
    """The photos of a folder (as :func:`list_images`), or of a list of photo files and folders.

    Training takes a folder; learning a style on the fly trains on the very photos
    being stylized, which ``stylize apply`` gets as files and folders.
    """
    if isinstance(photos, (str, Path)):
        return list_images(Path(photos), "content")
    if not photos:
        raise StylizeError("no content photos given")
    files: list[Path] = []
    for item in map(Path, photos):
        if item.is_dir():
            files += list_images(item, "content")
        elif item.is_file():
            files.append(item)
        else:
            raise StylizeError(f"content photo {item}: no such file")
    return files


def load_styles(folder: Path, size: int) -> tuple[list[str], list[Tensor]]:
    """Every image in ``folder`` as a style named by its file stem, long side ``size``."""
    files = list_images(folder, "style")
    names = [p.stem for p in files]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise StylizeError(f"style folder {folder} has several files named {duplicates[0]!r}; style names must be unique")
    images = [resize_long_side(read_image(p).rgb, size) for p in files]
    return names, images


@dataclass(frozen=True)
class BatchPlan:
    """The random choices of one global batch."""

    photos: Tensor
    crops: Tensor
    flips: Tensor
    styles: Tensor
    flats: Tensor
    """(B, 6) in [0, 1): whether a sample gets a flat area, which kind, its size and place (:func:`flatten`)."""


class ContentPhotos(Dataset):
    """Training batches indexed by step: item ``step`` is this rank's share of that batch.

    ``folder`` is a folder of photos or a list of photo files (see :func:`photo_files`).
    Photos are resized so the short side is ``resize`` (default and at least ``image_size``)
    and randomly cropped to an ``image_size`` square and flipped. Photos are drawn without replacement within an epoch; each
    sample draws a style index in ``range(style_pool)``. With ``flat_areas`` above 0, that share of
    the samples gets one region made flat or clipped (:func:`flatten`).
    """

    def __init__(self, folder: Path | Sequence[Path], *, image_size: int, batch_size: int, style_pool: int,
                 seed: int, rank: int = 0, world_size: int = 1, resize: int | None = None,
                 flat_areas: float = 0.0) -> None:
        if batch_size % world_size:
            raise StylizeError(f"--batch-size {batch_size} must be divisible by the {world_size} processes")
        self.files = photo_files(folder)
        self.image_size = image_size
        self.resize = max(resize or image_size, image_size)
        self.batch_size = batch_size
        self.style_pool = style_pool
        self.seed = seed
        self.flat_areas = flat_areas
        self._orders: dict[int, Tensor] = {}
        self.local = slice(rank * batch_size // world_size, (rank + 1) * batch_size // world_size)

    def __len__(self) -> int:
        return 2**62

    def _epoch_order(self, epoch: int) -> Tensor:
        if epoch not in self._orders:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._orders[epoch] = torch.randperm(len(self.files), generator=g)
        return self._orders[epoch]

    def plan(self, step: int) -> BatchPlan:
        """The global batch of ``step``; identical on every rank and every run."""
        n = len(self.files)
        positions = [step * self.batch_size + i for i in range(self.batch_size)]
        photos = torch.stack([self._epoch_order(p // n)[p % n] for p in positions])
        g = torch.Generator().manual_seed(self.seed * 7_919 + step * 104_729 + 17)
        return BatchPlan(
            photos=photos,
            crops=torch.rand(self.batch_size, 2, generator=g),
            flips=torch.rand(self.batch_size, generator=g) < 0.5,
            styles=torch.randint(self.style_pool, (self.batch_size,), generator=g),
            flats=torch.rand(self.batch_size, 6, generator=g),  # drawn last: the draws above stay as they were
        )

    def crop(self, index: int, where: Tensor, flip: bool) -> Tensor:
        """Photo ``index``, short side resized to ``resize``, ``image_size`` square crop at ``where`` in [0,1)^2."""
        path = self.files[index]
        try:
            with Image.open(path) as img:
                check_pixels(img, f"content photo {path}")
                img.draft("RGB", (self.resize, self.resize))
                rgb = img.convert("RGB")
        except (*CORRUPT_DATA_ERRORS, Image.DecompressionBombError) as exc:
            raise StylizeError(f"content photo {path} cannot be read ({first_line(exc)})") from None
        w, h = rgb.size
        scale = self.resize / min(w, h)
        size = (max(self.resize, round(w * scale)), max(self.resize, round(h * scale)))
        rgb = rgb.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        x = int(where[0] * (size[0] - self.image_size + 1))
        y = int(where[1] * (size[1] - self.image_size + 1))
        rgb = rgb.crop((x, y, x + self.image_size, y + self.image_size))
        if flip:
            rgb = rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return torch.from_numpy(np.array(rgb)).permute(2, 0, 1)

    def __getitem__(self, step: int) -> tuple[Tensor | None, Tensor, list[str]]:
        """(uint8 images (B_local,3,S,S), style indices (B_local,), why photos were skipped) for
        this rank at ``step``; images are ``None`` when no photo at all can be read.

        A photo that cannot be read is replaced by the next readable one, and the reason is
        returned rather than raised: in a DataLoader worker an exception would end the run
        with the worker's traceback, and the caller is the one to warn.
        """
        plan = self.plan(step)
        images, skipped = [], []
        for i in range(self.batch_size)[self.local]:
            for offset in range(len(self.files)):
                try:
                    image = self.crop((int(plan.photos[i]) + offset) % len(self.files), plan.crops[i],
                                      bool(plan.flips[i]))
                    images.append(flatten(image, plan.flats[i]) if plan.flats[i, 0] < self.flat_areas else image)
                    break
                except StylizeError as exc:
                    skipped.append(str(exc))
            else:
                return None, plan.styles[self.local], skipped
        return torch.stack(images), plan.styles[self.local], skipped


def flatten(image: Tensor, where: Tensor) -> Tensor:
    """A copy of the uint8 (3, S, S) crop with one region made flat: filled with its mean colour, or
    clipped to white (a blown-out highlight), as ``where[1]`` falls below or above 0.5.

    Photos' flat and clipped areas give the instance norms no variation to work with, and
    the network paints them as flat bright blotches; training on such areas teaches it to
    paint strokes there. The region's sides are 20% to 60% of the crop (``where[2:4]``), its
    place ``where[4:6]``.
    """
    size = image.shape[-1]
    height, width = (int(size * (0.2 + 0.4 * float(f))) for f in where[2:4])
    top, left = (int(float(f) * (size - side + 1)) for f, side in zip(where[4:6], (height, width), strict=True))
    out = image.clone()
    region = out[:, top:top + height, left:left + width]
    if where[1] < 0.5:
        region[:] = region.float().mean((1, 2), keepdim=True).round().to(image.dtype)
    else:
        region[:] = 255
    return out
