"""How much of each painting's style a checkpoint transfers, layer by layer (forward passes only).

For every style and test photo: the Gram distance between the stylized photo and the
painting at relu1_2..relu4_3, divided by the same distance for the unstylized photo.
1.0 means nothing of that layer's statistics was transferred, 0 a perfect match; relu4_3
carries the largest motifs, relu1_2 colour and the finest grain. It compares recipes
trained with different loss weights on one scale, which their own losses cannot.

    python models/style_match.py --paintings DIR --photos DIR --model A=ckpt [--model B=ckpt]
        [--size 256] [--limit 4] [--painting-size 384]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch
import torch.nn.functional as F

from stylize.model import checkpoint
from stylize.train.data import load_styles
from stylize.train.evaluate import load_test_photos
from stylize.train.loss import LAYERS, gram
from stylize.train.vgg import load_vgg


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paintings", type=Path, required=True)
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--model", action="append", required=True, help="LABEL=CHECKPOINT (repeat)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--limit", type=int, default=4)
    parser.add_argument("--painting-size", type=int, default=384)
    args = parser.parse_args()

    vgg = load_vgg()
    names, paintings = load_styles(args.paintings, args.painting_size)
    targets = {n: [gram(f) for f in vgg(p[None])] for n, p in zip(names, paintings)}
    photos = [p[None] for p in load_test_photos(args.photos, args.size, args.limit)]
    photo_feats = [vgg(p) for p in photos]
    print(f"| model | style | {' | '.join(LAYERS)} | content relu3_3 (vs photo) |")
    print(f"|---|---|{'---|' * (len(LAYERS) + 1)}")
    for label, path in (m.split("=", 1) for m in args.model):
        ckpt = checkpoint.load(Path(path))
        summary = {layer: [] for layer in LAYERS}
        for name in ckpt.styles:
            if name not in targets:
                continue
            index = ckpt.styles.index(name)
            ratios, content = {layer: [] for layer in LAYERS}, []
            for photo, feats in zip(photos, photo_feats):
                out = vgg(ckpt.net(photo, index))
                for layer, o, f, t in zip(LAYERS, out, feats, targets[name]):
                    ratios[layer].append((F.mse_loss(gram(o), t) / F.mse_loss(gram(f), t)).item())
                content.append(F.mse_loss(out[2], feats[2]).item())
            row = [statistics.mean(ratios[layer]) for layer in LAYERS]
            for layer, value in zip(LAYERS, row):
                summary[layer].append(value)
            print(f"| {label} | {name} | {' | '.join(f'{v:.3f}' for v in row)} | {statistics.mean(content):.3g} |")
        print(f"| {label} | **median** | {' | '.join(f'{statistics.median(summary[layer]):.3f}' for layer in LAYERS)} | |")


if __name__ == "__main__":
    main()
