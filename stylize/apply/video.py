"""Stylizing a video: every frame through the network, streamed, with steady colours.

Frames are decoded, stylized and encoded one at a time, so memory does not grow with the
clip's length. The output keeps the input's size (``max_size`` aside), frame timestamps
(hence its frame rate, variable ones included) and its first audio track, copied without
re-encoding. It is written like a photo: to a temporary file renamed into place when
complete, so an interrupted run leaves no partial video and a rerun redoes it.

**Flicker.** Instance norm normalizes every frame by its own statistics, so small
changes between frames (noise, a hand moving into view) shift every colour of the
output a little: the style flickers. Each frame's norm statistics are therefore pulled
toward the previous frame's (a :class:`~stylize.apply.renderer.Prior`, the mechanism tiling
uses to share statistics between tiles; both backends take it): with ``smoothing`` s, a frame is normalized with
``own * (1 - s) + previous * s`` in every layer, an exponential moving average over
frames. That steadies global colour shifts (something large entering the picture), but
statistics over a whole frame hardly move with noise, while the network turns pixel noise
into texture that changes every frame. So, second, pixels that stayed still in the input
are steadied in the output (:class:`Steadier`): where a pixel's neighbourhood changed by
less than :data:`STILL_CHANGE`, the output is blended with the previous output, weight
``smoothing`` fading to 0 as the change approaches that bound; where things move, each
frame is its own, so motion does not trail.

PyAV (the ``video`` extra: ``pip install -e '.[video]'`` in a checkout) reads and writes the files;
it bundles FFmpeg.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
from PIL import Image

from ..config import ApplySettings, VideoSettings
from ..errors import StylizeError
from ..io.atomic import replace_atomically
from ..io.formats import VIDEO_CONTAINERS
from ..io.pixels import long_side_size
from ..model.styles import StyleChoice
from .renderer import Prior

if TYPE_CHECKING:
    from .renderer import Renderer


CODECS = {"webm": ("libvpx-vp9", "libvpx")}
"""Video encoders to try by container, in order; others use :data:`DEFAULT_CODECS`."""
DEFAULT_CODECS = ("libx264", "mpeg4")

STILL_CHANGE = 0.06
"""Mean absolute change over a 5x5 neighbourhood (of full scale, channels averaged) below
which a pixel counts as still: above sensor noise (3 levels of 255 averages to ~0.015),
below an edge moving by a pixel."""

STILL_WINDOW = 5


def _av() -> Any:
    try:
        import av
    except ImportError:
        raise StylizeError("videos need PyAV: pip install av (the video extra; in a checkout: "
                           "pip install -e '.[video]')") from None
    return av


def stylize_video(renderer: Renderer, source: Path, destination: Path, choice: StyleChoice,
                  settings: ApplySettings = ApplySettings(), video: VideoSettings = VideoSettings(), *,
                  on_frame: Callable[[int, int | None], None] | None = None,
                  overwrite: bool = True) -> int | None:
    """Write ``source`` stylized to ``destination`` (atomically); returns the number of frames.

    ``on_frame(done, total)`` is called after every frame; ``total`` is ``None`` when the
    container does not say how many frames it holds. Without ``overwrite`` the destination is
    created exclusively, as photos are: ``None`` when a file appeared there meanwhile (kept).
    """
    av = _av()
    container = VIDEO_CONTAINERS.get(destination.suffix.lower())
    if container is None:
        raise StylizeError(f"cannot write a video to {destination}: use one of {', '.join(sorted(VIDEO_CONTAINERS))}")
    frames = 0

    def write(tmp: Path) -> None:
        nonlocal frames
        with av.open(str(source)) as src, av.open(str(tmp), "w", format=container) as dst:
            frames = _transcode(av, src, dst, container, renderer, choice, settings, video, on_frame)

    try:
        created = replace_atomically(destination, write, replace=overwrite)
    except av.FFmpegError as exc:
        raise StylizeError(f"cannot read or write the video: {exc}") from None
    except OSError as exc:
        raise StylizeError(f"cannot write {destination}: {exc.strerror or exc}") from None
    return frames if created else None


def _transcode(av: Any, src: Any, dst: Any, container: str, renderer: Renderer, choice: StyleChoice,
               settings: ApplySettings, video: VideoSettings,
               on_frame: Callable[[int, int | None], None] | None) -> int:
    if not src.streams.video:
        raise StylizeError("no video stream in the file")
    vin = src.streams.video[0]
    ain = src.streams.audio[0] if src.streams.audio else None
    width, height = output_size(vin.codec_context.width, vin.codec_context.height, settings.max_size)
    vout = _video_stream(av, dst, container, vin, width, height, video.crf)
    try:
        aout = dst.add_stream_from_template(ain) if ain is not None else None
    except ValueError:  # the container cannot hold that codec (AAC in WebM): audio is copied, not re-encoded
        raise StylizeError(f"a {container} file cannot hold this clip's {ain.codec_context.name} audio, which is "
                           "copied as it is; write .mp4, .mov or .mkv instead") from None
    total = vin.frames or None
    previous = None
    steadier = Steadier(video.smoothing)
    done = 0
    for packet in src.demux(*(s for s in (vin, ain) if s is not None)):
        if packet.stream is ain:
            if packet.dts is not None:
                packet.stream = aout
                dst.mux(packet)
            continue
        for frame in packet.decode():
            rgb = frame.to_ndarray(format="rgb24").transpose(2, 0, 1).astype(np.float32) / np.float32(255)
            prior = Prior(previous, video.smoothing) if previous is not None else None
            out, previous = renderer.stylize_with_stats(renderer.pixels(rgb), choice, settings, prior)
            out = steadier(rgb, np.asarray(out, dtype=np.float32))
            pixels = np.clip(np.round(out * 255), 0, 255).astype(np.uint8).transpose(1, 2, 0)
            styled = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
            styled.pts, styled.time_base = frame.pts, frame.time_base
            dst.mux(vout.encode(styled))
            done += 1
            if on_frame is not None:
                on_frame(done, total)
    dst.mux(vout.encode(None))
    if done == 0:
        raise StylizeError("no frames could be decoded")
    return done


class Steadier:
    """Blends still pixels of each stylized frame with the previous output (see the module docstring)."""

    def __init__(self, smoothing: float) -> None:
        self.smoothing = smoothing
        self.frame: np.ndarray | None = None
        self.output: np.ndarray | None = None

    def __call__(self, frame: np.ndarray, output: np.ndarray) -> np.ndarray:
        """``output``, the stylized ``frame`` (both (3, H, W) in [0, 1]; ``max_size`` may have shrunk it), steadied."""
        if frame.shape != output.shape:
            frame = _area_resize(frame, output.shape[-2:])
        if self.smoothing and self.frame is not None:
            change = _box_mean(np.abs(frame - self.frame).mean(0), STILL_WINDOW)
            keep = np.clip(1 - change / np.float32(STILL_CHANGE), 0, 1) * np.float32(self.smoothing)
            output = output + (self.output - output) * keep
        self.frame, self.output = frame, output
        return output


def _box_mean(plane: np.ndarray, window: int) -> np.ndarray:
    """The mean over each pixel's ``window`` x ``window`` neighbourhood, edges replicated."""
    pad = window // 2
    sums = np.pad(plane, pad, mode="edge").astype(np.float64).cumsum(0).cumsum(1)
    sums = np.pad(sums, ((1, 0), (1, 0)))
    height, width = plane.shape
    total = (sums[window:window + height, window:window + width] - sums[:height, window:window + width]
             - sums[window:window + height, :width] + sums[:height, :width])
    return (total / window ** 2).astype(np.float32)


def _area_resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(C, H, W) averaged down to ``size`` (Pillow's box filter)."""
    height, width = size
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(plane)).resize((width, height), Image.BOX))
                     for plane in image])


def output_size(width: int, height: int, max_size: int | None) -> tuple[int, int]:
    """The stylized frame size, rounded down to even numbers (4:2:0 video needs them).

    ``max_size`` shrinks it as the renderers shrink each frame (:func:`stylize.io.pixels.long_side_size`).
    """
    if max_size and max(width, height) > max_size:
        height, width = long_side_size(height, width, max_size)
    return max(2, width // 2 * 2), max(2, height // 2 * 2)


def _video_stream(av: Any, dst: Any, container: str, vin: Any, width: int, height: int, crf: int) -> Any:
    """An output video stream at the input's frame rate, with the first encoder FFmpeg has."""
    rate = vin.average_rate or vin.guessed_rate or Fraction(25)
    for codec in CODECS.get(container, DEFAULT_CODECS):
        if codec in av.codecs_available:
            break
    else:
        raise StylizeError(f"this FFmpeg build has no video encoder for {container} files")
    options = {"crf": str(crf)} if codec in ("libx264", "libvpx-vp9") else {}
    if codec == "libvpx-vp9":
        options["b"] = "0"  # constant quality
    stream = dst.add_stream(codec, rate=rate, options=options)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    if codec == "mpeg4":
        stream.codec_context.qscale = 2
    return stream
