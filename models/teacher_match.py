"""How closely a distilled student paints what its teacher paints: PSNR of the two renderings, per style.

Both models render the same photos (long side ``--size``) through the public API
(``Stylizer``, the PyTorch path, fp32), and the student's image is compared with the
teacher's, pixel by pixel, in every style the two share. A Markdown table per style
(mean PSNR over the photos, dB), then the median and the worst style.

    python models/teacher_match.py --student weights/stylize-22-fast.safetensors \
        --teacher weights/stylize-22.safetensors --photos "$DATA"/content/test --limit 4 --size 256
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path

import torch

from stylize import Stylizer
from stylize.train.data import photo_files
from stylize.io.images import read_image
from stylize.io.pixels import resize_long_side


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float((a.float() - b.float()).pow(2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", type=Path, required=True)
    parser.add_argument("--teacher", type=Path, required=True)
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=4, help="the first N photos")
    parser.add_argument("--size", type=int, default=256, help="long side the photos are rendered at")
    args = parser.parse_args()
    student = Stylizer.load(args.student, device="cpu")
    teacher = Stylizer.load(args.teacher, device="cpu")
    photos = [resize_long_side(read_image(p).rgb, args.size) for p in photo_files(args.photos)[:args.limit]]
    rows = {}
    for name in (s for s in teacher.styles if s in student.styles):
        rows[name] = statistics.mean(psnr(student.stylize(photo, student.choose(name)[0]),
                                          teacher.stylize(photo, teacher.choose(name)[0])) for photo in photos)
    print(f"| style | PSNR against the teacher, dB (mean of {len(photos)} photos at {args.size} px) |\n|---|---|")
    for name, value in rows.items():
        print(f"| {name} | {value:.2f} |")
    worst = min(rows, key=rows.get)
    print(f"\nmedian {statistics.median(rows.values()):.2f} dB, worst {rows[worst]:.2f} dB ({worst})")


if __name__ == "__main__":
    main()
