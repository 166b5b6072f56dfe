"""`stylize apply clip.mp4`: frames, rate, size and sound kept; complete or absent; steadier with smoothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from stylize.cli import app
from stylize.errors import StylizeError
from stylize.apply.torch_backend import Stylizer
from stylize.config import VideoSettings
from stylize.apply.video import output_size, stylize_video

av = pytest.importorskip("av")
from benchmarks.video_stability import (make_clip, mean_change, read_frames, stability,  # noqa: E402  (needs av)
                                        still_background, warped_change)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("video") / "clip.mp4", size=(96, 64), frames=8, fps=12)


def streams(path: Path) -> dict:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        return {"size": (video.codec_context.width, video.codec_context.height), "rate": video.average_rate,
                "frames": sum(1 for _ in container.decode(video=0)),
                "audio": None if audio is None else (audio.codec_context.name, audio.sample_rate)}


def test_apply_writes_a_stylized_video_with_the_same_rate_size_and_sound(tiny_model: Path, clip: Path,
                                                                         tmp_path: Path):
    out = tmp_path / "styled.mp4"
    result = CliRunner().invoke(app, ["apply", str(clip), "--model", str(tiny_model), "--style", "starry",
                                      "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert streams(out) == streams(clip)
    assert streams(out)["audio"] == ("aac", 16000)
    styled, original = read_frames(out), read_frames(clip)
    assert np.abs(styled.astype(int) - original).mean() > 20  # it is stylized, not copied
    assert [p.name for p in tmp_path.iterdir()] == ["styled.mp4"]  # no temporary file left


def test_video_is_named_beside_its_input_skipped_when_there_and_redone_with_overwrite(tiny_model: Path, clip: Path,
                                                                                      tmp_path: Path):
    source = tmp_path / "holiday.mov"
    source.write_bytes(clip.read_bytes())
    args = ["apply", str(source), "--model", str(tiny_model), "--style", "wave"]
    assert CliRunner().invoke(app, args).exit_code == 0
    out = tmp_path / "holiday-great_wave.mov"
    assert streams(out)["frames"] == 8
    before = out.stat().st_mtime_ns
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "skipped" in again.output and out.stat().st_mtime_ns == before
    assert CliRunner().invoke(app, args + ["--overwrite"]).exit_code == 0
    assert out.stat().st_mtime_ns != before


def test_an_interrupted_video_leaves_nothing(tiny_model: Path, clip: Path, tmp_path: Path):
    stylizer = Stylizer.load(tiny_model, device="cpu")
    out = tmp_path / "out.mp4"

    def stop(done: int, total: int | None) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stylize_video(stylizer, clip, out, stylizer.choose("starry")[0], on_frame=stop)
    assert list(tmp_path.iterdir()) == []


def test_bad_videos_are_one_line_errors(tiny_model: Path, clip: Path, tmp_path: Path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    result = CliRunner().invoke(app, ["apply", str(broken), "--model", str(tiny_model), "--style", "starry"])
    assert result.exit_code == 1 and "broken.mp4" in result.output
    assert not (tmp_path / "broken-starry_night.mp4").exists()
    as_photo = CliRunner().invoke(app, ["apply", str(clip), "--model", str(tiny_model), "--style", "starry",
                                        "-o", str(tmp_path / "frame.jpg")])
    assert as_photo.exit_code == 1 and "cannot be written as '.jpg'" in as_photo.output
    with pytest.raises(StylizeError, match="smoothing"):
        VideoSettings(smoothing=1.0)


def test_smoothing_steadies_the_output(tiny_model: Path, tmp_path: Path):
    """Sensor noise on still parts of the picture: steadied by smoothing, while the moving disc is not held back."""
    still = make_clip(tmp_path / "still.mp4", size=(64, 48), frames=8, noise=8.0, audio=False, pan=False, seed=1)
    stylizer = Stylizer.load(tiny_model, device="cpu")
    choice = stylizer.choose("scream")[0]
    figures = {}
    for smoothing in (0.0, 0.9):
        out = tmp_path / f"out-{smoothing}.mp4"
        stylize_video(stylizer, still, out, choice, video=VideoSettings(smoothing=smoothing))
        figures[smoothing] = stability(still, out)
    assert figures[0.9] < figures[0.0]
    assert mean_change(read_frames(still)) > 0


def test_videos_render_on_onnx_runtime_as_on_torch(tiny_model: Path, tmp_path: Path):
    """The ONNX graph takes the previous frame's statistics as its prior: steadied as on PyTorch."""
    from stylize.apply.onnx_backend import OnnxStylizer

    still = make_clip(tmp_path / "still.mp4", size=(64, 48), frames=6, noise=8.0, audio=False, pan=False, seed=1)
    outputs = {}
    for name, renderer, smoothing in (("torch", Stylizer.load(tiny_model, device="cpu"), 0.9),
                                      ("onnx", OnnxStylizer.load(tiny_model), 0.9),
                                      ("onnx-unsteadied", OnnxStylizer.load(tiny_model), 0.0)):
        outputs[name] = tmp_path / f"{name}.mp4"
        stylize_video(renderer, still, outputs[name], renderer.choose("scream")[0],
                      video=VideoSettings(smoothing=smoothing))
    onnx, torch_frames = read_frames(outputs["onnx"]).astype(int), read_frames(outputs["torch"])
    assert onnx.shape == torch_frames.shape
    assert np.abs(onnx - torch_frames).mean() < 3  # the same render (40 dB apart), encoded twice
    assert np.abs(onnx - read_frames(still)).mean() > 20  # stylized, not copied
    assert stability(still, outputs["onnx"]) < stability(still, outputs["onnx-unsteadied"])


def test_output_size_is_even_and_follows_max_size():
    assert output_size(96, 64, None) == (96, 64)
    assert output_size(1920, 1080, 640) == (640, 360)
    assert output_size(101, 51, None) == (100, 50)


def test_motion_compensated_change_follows_the_pan_and_catches_trails():
    # A backdrop panned 3 px a frame: an output that moves with it scores 0; one that
    # trails the camera (each frame half the one before, as whole-frame blending does) does not.
    rng = np.random.default_rng(0)
    backdrop = rng.integers(0, 256, (16, 80, 3), dtype=np.uint8)
    shifts = [3 * t for t in range(6)]
    follows = np.stack([backdrop[:, s:s + 40] for s in shifts])
    trails = [follows[0]]
    for frame in follows[1:]:
        trails.append(((frame.astype(np.uint16) + trails[-1]) // 2).astype(np.uint8))
    trails = np.stack(trails)
    keep = still_background(follows, shifts)
    assert keep[:, :, :37].all() and not keep[:, :, 37:].any()  # only what both frames show
    assert warped_change(follows, shifts, keep) == 0
    assert warped_change(trails, shifts, keep) > 10  # levels; random pixels differ by ~85


def test_without_pyav_the_hint_names_commands_that_work(monkeypatch: pytest.MonkeyPatch):
    import sys

    from stylize.apply import video

    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(StylizeError) as info:
        video._av()
    message = str(info.value)
    assert "pip install av" in message and "pip install -e '.[video]'" in message
    assert "stylize-cin[" not in message  # not on PyPI yet: that command cannot work


def test_a_file_that_appears_at_the_output_while_the_video_renders_is_kept_and_reported_skipped(
        tiny_model: Path, clip: Path, tmp_path: Path):
    """Outputs are claimed the same way for videos as for photos: created exclusively."""
    out = tmp_path / "out.mp4"
    seen: list[str] = []

    def on_frame(result, done: int, total: int | None) -> None:
        if done == 2:
            out.write_bytes(b"another run's finished video")

    from stylize.apply import batch
    from stylize.apply.plan import plan

    stylizer = Stylizer.load(tiny_model, device="cpu")
    summary = batch.run(stylizer, plan([str(clip)], str(out), stylizer.choose("starry")),
                        on_result=lambda result: seen.append(result.status), on_frame=on_frame)
    assert out.read_bytes() == b"another run's finished video"
    assert seen == ["skipped"] and summary.count("skipped") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_webm_from_a_clip_with_aac_audio_is_one_line_or_written(tiny_model: Path, clip: Path, tmp_path: Path):
    assert streams(clip)["audio"] is not None  # the fixture clip has an AAC track, which WebM cannot hold
    out = tmp_path / "out.webm"
    result = CliRunner().invoke(app, ["apply", str(clip), "-o", str(out), "--model", str(tiny_model), "-s", "wave"])
    assert "Traceback" not in result.output and "ValueError" not in result.output, result.output
    if result.exit_code == 0:
        assert streams(out)["frames"] == 8
    else:
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert result.exit_code == 1 and len(errors) == 1 and "audio" in errors[0], result.output
        assert list(tmp_path.iterdir()) == []
