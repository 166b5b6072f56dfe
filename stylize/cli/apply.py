"""``stylize apply`` and ``stylize sheet``: rendering photos, folders and videos."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from ..config import (AUTO_TILE_ONNX, AUTO_TILE_OTHER, QUICK_CPU, SHEET_CELL, SHEET_MAX_COLUMNS, WORK_SIZE,
                      ApplySettings, BatchOptions, VideoSettings)
from ..runtime.process import own_process
from .common import (FILES, RENDER, STYLE_HELP, VIDEO, WORKERS_HELP, Backend, DeviceOption, ImageFormat, ModelOption,
                     Precision, Quiet, Verbose, announce_device, announce_graph, echo, fail, is_main_process,
                     user_errors, verbosity)
from .progress import FrameBar, Progress, StepBar, TileProgress

if TYPE_CHECKING:
    from ..apply.batch import Result
    from ..apply.renderer import Renderer


def apply(
    inputs: list[str] = typer.Argument(..., metavar="INPUT",
                                       help="Photos, folders (searched recursively), or '-' to read stdin."),
    output: Optional[str] = typer.Option(
        None, "--output", "-o",
        help="A file (one photo), a folder, or '-' for stdout. Default: photo-STYLE.ext beside a photo, "
             "FOLDER-STYLE/ beside a folder."),
    style: Optional[str] = typer.Option(None, "--style", "-s", help=STYLE_HELP),
    model: ModelOption = None,
    strength: float = typer.Option(RENDER.strength, help="0 to 1: how much of the style to blend over the photo."),
    preserve_color: bool = typer.Option(False, "--preserve-color",
                                        help="Keep the photo's colours; take only light and shade from the style."),
    max_size: Optional[int] = typer.Option(None, help="Downscale photos first so the long side is at most N px."),
    quality: int = typer.Option(FILES.quality, help="JPEG and WebP quality, 1 to 100."),
    fmt: Optional[ImageFormat] = typer.Option(None, "--format", case_sensitive=False,
                                      help="Output format (jpg, png, webp, bmp, tiff) for derived names and stdout; "
                                           "default: each input's own."),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="Redo outputs that exist (default: skip them, so a rerun resumes)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON line per output, with the device, precision "
                                                       "and seconds per stage."),
    device: DeviceOption = "auto",
    precision: Precision = typer.Option("auto", case_sensitive=False,
                                        help="auto (fp16 on CUDA, fp32 elsewhere), fp32, fp16 or bf16."),
    tile_size: Optional[int] = typer.Option(
        None, help="Render images of over N x N pixels in N px tiles (default: what fits the free memory on "
                   f"CUDA, {AUTO_TILE_ONNX} on ONNX Runtime, {AUTO_TILE_OTHER} elsewhere; smaller if memory runs "
                   "out; 0: never)."),
    work_size: Optional[int] = typer.Option(
        RENDER.work_size, help="Stroke size: photos longer than N px are painted at N px and their detail added "
                               "back at full size, so strokes look as on a photo N px long (smaller: larger "
                               "strokes; 0: paint at full resolution, the network's own stroke size). Default: "
                               f"the style's own ('stylize styles' lists them), else {WORK_SIZE}."),
    max_pixels: int = typer.Option(
        FILES.max_pixels, help="Refuse images with more pixels than this (a decompression-bomb guard; 0: no limit)."),
    workers: int = typer.Option(FILES.workers, min=0, help=f"{WORKERS_HELP} Threads here."),
    style_image: Optional[Path] = typer.Option(
        None, "--style-image", help="Any picture as the style: its style is learned first (minutes on a CPU, "
                                    "cached: instant the next time), then applied."),
    content: Optional[Path] = typer.Option(
        None, "--content", "-c", help="With --style-image: folder of photos to learn on (default: the inputs)."),
    save_style_to: Optional[Path] = typer.Option(
        None, "--save-style-to", help="With --style-image: also save the model plus the new style as a checkpoint."),
    style_steps: Optional[int] = typer.Option(
        None, "--style-steps", min=1, help=f"With --style-image: learning steps (default on a CPU: "
                                           f"{QUICK_CPU['steps']}, a quick first look; more: closer to the painting)."),
    backend: Backend = typer.Option(
        "auto", case_sensitive=False, help="auto (ONNX Runtime on a CPU when onnxruntime and onnx are installed: starts without "
                     "PyTorch; else PyTorch), torch or onnx."),
    smoothing: float = typer.Option(
        VIDEO.smoothing, help="Videos: weight of the previous frame's normalization statistics, 0 to below 1; "
                  "steadies colours from frame to frame (0: every frame on its own)."),
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Stylize photos, folders and videos; outputs that exist are skipped, inputs are never overwritten.

    Examples:

      stylize apply photo.jpg --style starry

      stylize apply ~/Pictures/trip -o ~/Pictures/trip-starry --style starry

      stylize apply photo.jpg --style starry:0.7,wave:0.3 -o mix.png

      stylize apply clip.mp4 --style starry -o clip-starry.mp4    (needs the video extra)

      cat in.jpg | stylize apply - --style wave > out.jpg

      stylize apply photo.jpg --style-image painting.jpg
    """
    import time

    from ..apply.job import ApplyJob, Hooks, apply as run_job
    from ..apply.plan import STDIO

    stdout = typer.get_binary_stream("stdout")
    to_stdout = output == STDIO or (output is None and inputs == [STDIO])
    if to_stdout and stdout.isatty():
        fail("refusing to write image data to a terminal; redirect stdout (> out.jpg) or use -o FILE")
    if STDIO in inputs and sys.stdin.isatty():
        fail("'-' reads a photo from stdin, but stdin is a terminal; pipe one in (< photo.jpg)")
    engine = own_process()
    say = verbosity(quiet, verbose)
    show = say.progress and is_main_process()
    with user_errors(2):  # the settings check the options' values
        settings = ApplySettings(strength=strength, preserve_color=preserve_color, max_size=max_size,
                                 tile_size=tile_size, work_size=work_size)
        options = BatchOptions(quality=quality, format=fmt and str(fmt), overwrite=overwrite, workers=workers,
                               max_pixels=max_pixels)
        video = VideoSettings(smoothing=smoothing)
    with user_errors():
        job = ApplyJob(inputs, output, style, model, settings=settings, options=options, video=video,
                       backend=str(backend), device=device, precision=str(precision), engine=engine,
                       style_image=style_image, content=content, save_style_to=save_style_to, style_steps=style_steps)
    learning, tiles, frames = StepBar(say, "learning the style", main=is_main_process()), TileProgress(show), FrameBar(show)
    bars: list[Progress] = []
    started = [time.perf_counter()]

    def on_start(renderer: Renderer, total: int) -> None:
        learning.close()
        say.record("load", time.perf_counter() - started[0])
        started[0] = time.perf_counter()
        if renderer.arrays:
            say.detail("device: cpu (ONNX Runtime)")
        say.detail(f"precision: {renderer.precision}")
        bars.append(Progress(total, "img", desc="apply", enabled=show and total > 1))

        def on_result(result: Result) -> None:
            bars[0].advance()
            if as_json:
                record = {**result.to_dict(), "device": str(renderer.device), "precision": renderer.precision}
                typer.echo(json.dumps(record), err=to_stdout)
            if say.verbose and result.stages:
                say.detail(f"{result.output}: " + ", ".join(f"{k} {v:.2f} s" for k, v in result.stages.items()))

        hooks.on_result = on_result

    hooks = Hooks(on_device=announce_device(device, say), on_make_graph=announce_graph(say), on_step=learning,
                  on_start=on_start, on_frame=frames, on_tile=tiles,
                  streams={"stdin": typer.get_binary_stream("stdin"), "stdout": stdout})
    try:
        with user_errors():
            summary = run_job(job, hooks)
        say.record("render", time.perf_counter() - started[0])
    except KeyboardInterrupt:
        fail("interrupted; every finished output is saved, run the same command again to resume" if bars else
             "interrupted while learning the style; nothing was written" if style_image is not None else
             "interrupted while opening the model; nothing was written", 130)
    finally:
        for bar in (learning, frames, tiles, *bars):
            bar.close()
    if is_main_process():  # the other ranks exit 0 so that torchrun does not stop rank 0 mid-report
        for result in summary.failed:
            echo(f"error: {result.error}")
        outcome = summary.describe()
        if outcome is not None:
            say.say(outcome, err=True)
        if summary.failed:
            raise typer.Exit(1)


def sheet(
    photo: Path = typer.Argument(..., metavar="PHOTO", help="The photo to show every style on."),
    output: Path = typer.Option(..., "--output", "-o", help="Image file to write the sheet to."),
    model: ModelOption = None,
    cell: int = typer.Option(SHEET_CELL[1], min=SHEET_CELL[0], max=SHEET_CELL[2],
                             help="Long side of each rendering, in pixels."),
    columns: Optional[int] = typer.Option(None, min=1, max=SHEET_MAX_COLUMNS,
                                          help="Cells per row (default: a near-square grid)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUTPUT if it exists."),
    device: DeviceOption = "auto",
    backend: Backend = typer.Option("auto", case_sensitive=False, help="auto, torch or onnx (as for apply)."),
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Render every style of a model on one photo, in a labelled grid, to choose one by eye.

    Examples:

      stylize sheet photo.jpg -o styles.jpg

      stylize sheet photo.jpg -o mine.png -m my-styles.safetensors --cell 192 --columns 6
    """
    from ..apply.sheet import write_sheet

    say = verbosity(quiet, verbose)
    with user_errors():
        styles = write_sheet(photo, output, model=model, cell=cell, columns=columns, overwrite=overwrite,
                             backend=str(backend), device=device, engine=own_process(),
                             on_device=announce_device(device, say), on_make_graph=announce_graph(say))
    say.say(f"wrote {output} ({len(styles)} styles)")
