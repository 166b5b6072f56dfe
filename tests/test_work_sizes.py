"""Per-style work sizes: stored in the checkpoint and its ONNX graph, checked as untrusted,
the default of ``apply`` unless ``--work-size`` is given, kept by every model edit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_STYLES, make_photo, make_tiny_model
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file
from typer.testing import CliRunner

from stylize.apply.onnx_backend import OnnxStylizer
from stylize.apply.torch_backend import Stylizer
from stylize.cli import app
from stylize.config import WORK_SIZE, ApplySettings
from stylize.errors import StylizeError
from stylize.model import checkpoint
from stylize.model.edits import remove_styles, rename_style, set_work_sizes
from stylize.model.header import MAX_WORK_SIZE, read_header
from stylize.model.onnx_export import graph_bytes
from stylize.model.styles import choose, own_work_size
from stylize.runtime.info import describe
from stylize.train.finetune import with_new_styles

pytest.importorskip("onnx")
runner = CliRunner()
SIZES = {"starry_night": 512, "the_scream": 0}


@pytest.fixture
def sized(tmp_path: Path) -> Path:
    """:func:`make_tiny_model` with sizes of their own for two of its three styles."""
    path = make_tiny_model(tmp_path / "tiny.safetensors")
    checkpoint.save(path, set_work_sizes(checkpoint.load(path), SIZES))
    return path


def with_metadata(path: Path, out: Path, **changes: object) -> Path:
    """A copy of checkpoint ``path`` whose JSON metadata has ``changes``, as anyone could write it."""
    with safe_open(str(path), framework="pt") as handle:
        meta = json.loads(handle.metadata()["stylize"])
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    save_file(tensors, str(out), metadata={"stylize": json.dumps({**meta, **changes})})
    return out


def test_a_checkpoint_keeps_its_work_sizes(sized: Path):
    assert read_header(sized).meta["work_sizes"] == SIZES
    assert checkpoint.load(sized).work_sizes == SIZES
    assert Stylizer.load(sized, device="cpu").work_sizes == SIZES


@pytest.mark.parametrize("sizes, message", [
    ([512], "not a mapping"),
    ("512", "not a mapping"),
    ({"nope": 512}, '"nope", which is not one of the model.s styles'),
    ({"Starry_Night": 512}, "not one of the model's styles"),  # exact names: no size for the wrong style
    ({"\x1b[2Jstarry_night": 512}, "not one of the model's styles"),
    ({"starry_night": 4}, "is 4, not 0 .* from 8 to 65536"),
    ({"starry_night": -1}, "is -1"),
    ({"starry_night": MAX_WORK_SIZE + 1}, "is 65537"),
    ({"starry_night": 10**400}, "not 0"),
    ({"starry_night": True}, "is true"),
    ({"starry_night": 512.0}, "not 0"),
    ({"starry_night": "512"}, "not 0"),
    ({"starry_night": None}, "not 0"),
    ({"starry_night": [512]}, "not 0"),
])
def test_hostile_work_sizes_are_refused_in_one_line(tiny_model: Path, tmp_path: Path, sizes: object, message: str):
    bad = with_metadata(tiny_model, tmp_path / "bad.safetensors", work_sizes=sizes)
    with pytest.raises(StylizeError, match=f"bad checkpoint metadata: .*{message}"):
        read_header(bad)
    result = runner.invoke(app, ["styles", "-m", str(bad)])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "\x1b" not in result.output


@pytest.mark.parametrize("size", [0, 8, 1024, MAX_WORK_SIZE])
def test_every_size_in_range_is_read(tiny_model: Path, tmp_path: Path, size: int):
    path = with_metadata(tiny_model, tmp_path / "ok.safetensors", work_sizes={"great_wave": size})
    assert checkpoint.load(path).work_sizes == {"great_wave": size}


def test_a_checkpoint_from_before_work_sizes_has_none(tiny_model: Path, tmp_path: Path):
    with safe_open(str(tiny_model), framework="pt") as handle:
        meta = json.loads(handle.metadata()["stylize"])
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    del meta["work_sizes"]
    save_file(tensors, str(tmp_path / "old.safetensors"), metadata={"stylize": json.dumps(meta)})
    assert checkpoint.load(tmp_path / "old.safetensors").work_sizes == {}


def test_work_size_given_beats_the_styles_own_which_beats_the_default():
    assert ApplySettings().work_size_for(None) == WORK_SIZE == 1024
    assert ApplySettings().work_size_for(512) == 512
    assert ApplySettings().work_size_for(0) == 0
    assert ApplySettings(work_size=700).work_size_for(512) == 700
    assert ApplySettings(work_size=0).work_size_for(512) == 0
    assert ApplySettings().paints_smaller((600, 800), 512) and not ApplySettings().paints_smaller((600, 800))
    assert not ApplySettings(work_size=0).paints_smaller((600, 800), 512)


def test_a_mix_takes_the_size_of_its_heaviest_style():
    sizes = {"starry_night": 512, "great_wave": 768}
    size = lambda style: own_work_size(choose(style, TINY_STYLES)[0], TINY_STYLES, sizes)  # noqa: E731
    assert size("starry") == 512 and size("wave") == 768 and size("scream") is None
    assert size("starry:0.3,wave:0.7") == 768
    assert size("starry:0.7,wave:0.3") == 512
    assert size("starry:0.4,scream:0.6") is None  # the heaviest has none: the default, not the lighter's
    assert size("wave:1,starry:1") == 512  # equals: the first in the model's order


def test_a_style_is_painted_at_its_own_size_unless_work_size_is_given(sized: Path):
    own = Stylizer.load(sized, device="cpu")
    plain = Stylizer(own.net, own.styles, device="cpu")
    big = torch.rand(3, 600, 760)
    starry, scream = own.choose("starry")[0], own.choose("scream")[0]
    at_512 = own.stylize(big, starry)
    assert torch.equal(at_512, plain.stylize(big, starry, ApplySettings(work_size=512)))
    assert not torch.equal(at_512, plain.stylize(big, starry))  # the default, 1024: at full size here
    assert torch.equal(own.stylize(big, starry, ApplySettings(work_size=0)), plain.stylize(big, starry))
    assert torch.equal(own.stylize(big, starry, ApplySettings(work_size=384)),
                       plain.stylize(big, starry, ApplySettings(work_size=384)))
    mix = own.choose("starry:0.7,scream:0.3")[0]
    assert torch.equal(own.stylize(big, mix), plain.stylize(big, mix, ApplySettings(work_size=512)))


def test_the_onnx_graph_carries_the_sizes_and_renders_with_them(sized: Path):
    graph = OnnxStylizer(graph_bytes(checkpoint.load(sized)))
    assert graph.work_sizes == SIZES
    photo = np.random.default_rng(0).random((3, 600, 760), dtype=np.float32)
    starry = graph.choose("starry")[0]
    assert np.array_equal(graph.stylize(photo, starry), graph.stylize(photo, starry, ApplySettings(work_size=512)))
    assert not np.array_equal(graph.stylize(photo, starry), graph.stylize(photo, starry, ApplySettings(work_size=0)))
    assert OnnxStylizer.load(sized).work_sizes == SIZES  # made from the checkpoint and cached


@pytest.mark.parametrize("sizes", ['{"zzz": 512}', '{"great_wave": 5}', "[1]", "{"])
def test_a_graph_with_bad_sizes_is_refused(sized: Path, sizes: str):
    data = graph_bytes(checkpoint.load(sized), {"work_sizes": sizes})
    with pytest.raises(StylizeError, match="graph"):
        OnnxStylizer(data)


def test_edits_keep_the_sizes(sized: Path):
    source = checkpoint.load(sized)
    assert remove_styles(source, ["starry_night"]).work_sizes == {"the_scream": 0}
    assert rename_style(source, "starry_night", "starry").work_sizes == {"starry": 512, "the_scream": 0}
    assert with_new_styles(source, ["monet"]).work_sizes == SIZES
    assert set_work_sizes(source, {"great-wave": 768}).work_sizes == {**SIZES, "great_wave": 768}
    assert set_work_sizes(source, {"starry_night": None}).work_sizes == {"the_scream": 0}
    assert source.work_sizes == SIZES  # the input is never changed


@pytest.mark.parametrize("sizes, message", [
    ({"starry": 512}, "unknown style 'starry'"),
    ({"great_wave": 4}, "work size of 'great_wave' is 4"),
    ({"great_wave": MAX_WORK_SIZE + 1}, "is 65537"),
    ({"great_wave": 512, "Great Wave": 768}, "given twice"),
])
def test_set_work_sizes_refuses(sized: Path, sizes: dict, message: str):
    with pytest.raises(StylizeError, match=message):
        set_work_sizes(checkpoint.load(sized), sizes)


def test_set_work_size_writes_a_copy_with_the_same_tensors(sized: Path, tmp_path: Path):
    out = tmp_path / "out.safetensors"
    result = runner.invoke(app, ["set-work-size", "great_wave=768", "starry_night=default", "-m", str(sized),
                                 "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"saved {out}" in result.output
    assert checkpoint.load(out).work_sizes == {"great_wave": 768, "the_scream": 0}
    with safe_open(str(sized), framework="pt") as a, safe_open(str(out), framework="pt") as b:
        assert a.keys() == b.keys()
        assert all(torch.equal(a.get_tensor(k), b.get_tensor(k)) for k in a.keys())
    listed = runner.invoke(app, ["styles", "-m", str(out)]).output
    assert "great_wave  (work size 768)" in listed and "the_scream  (work size full resolution)" in listed
    assert "starry_night\n" in listed
    meta = json.loads(runner.invoke(app, ["styles", "-m", str(out), "--json"]).output)
    assert meta["work_sizes"] == {"great_wave": 768, "the_scream": 0}


@pytest.mark.parametrize("args, message, code", [
    (["zzz=512"], "unknown style 'zzz'", 1),
    (["great_wave=5"], "work size of 'great_wave' is 5", 1),
    (["great_wave"], "bad NAME=SIZE 'great_wave'", 2),
    (["great_wave=big"], "bad NAME=SIZE", 2),
    (["great_wave=-5"], "bad NAME=SIZE", 2),
    (["=512"], "bad NAME=SIZE", 2),
    ([], "Missing argument", 2),
])
def test_set_work_size_errors_are_one_line(sized: Path, tmp_path: Path, args: list[str], message: str, code: int):
    out = tmp_path / "out.safetensors"
    result = runner.invoke(app, ["set-work-size", *args, "-m", str(sized), "-o", str(out)])
    assert result.exit_code == code and message in result.output, result.output
    assert not out.exists()


def test_set_work_size_never_overwrites_without_being_asked(sized: Path, tmp_path: Path):
    out = tmp_path / "out.safetensors"
    out.write_bytes(b"mine")
    result = runner.invoke(app, ["set-work-size", "great_wave=768", "-m", str(sized), "-o", str(out)])
    assert result.exit_code == 1 and "already exists" in result.output and out.read_bytes() == b"mine"
    result = runner.invoke(app, ["set-work-size", "great_wave=768", "-m", str(sized), "-o", str(sized)])
    assert result.exit_code == 1 and "is the input model" in result.output
    result = runner.invoke(app, ["set-work-size", "great_wave=768", "-m", str(sized), "-o", str(out), "--overwrite"])
    assert result.exit_code == 0 and checkpoint.load(out).work_sizes["great_wave"] == 768


def test_apply_paints_at_the_styles_own_size(sized: Path, tmp_path: Path):
    photo = make_photo(tmp_path / "p.png", (300, 240), seed=2)
    model = with_metadata(sized, tmp_path / "m.safetensors", work_sizes={"great_wave": 96})

    def render(*args: str) -> np.ndarray:
        out = tmp_path / f"out{len(list(tmp_path.glob('out*')))}.png"
        result = runner.invoke(app, ["apply", str(photo), "-s", "wave", "-m", str(model), "-o", str(out), *args])
        assert result.exit_code == 0, result.output
        return np.asarray(Image.open(out), dtype=np.float32)

    own = render()
    assert np.array_equal(own, render("--work-size", "96"))
    assert not np.array_equal(own, render("--work-size", "1024"))


def test_info_shows_the_sizes_a_model_has():
    facts = {"stylize": "0", "python": "3", "torch": None, "devices": None, "onnxruntime": None,
             "onnxruntime_providers": None, "onnx": None, "av": None, "apply_backend_on_cpu": "onnx",
             "default_model": None, "default_model_exists": False, "cache": "c", "cached_onnx_graphs": [],
             "models": [{"path": "a.safetensors", "styles": 3, "channels": [8, 16, 32], "work_sizes": SIZES},
                        {"path": "b.safetensors", "styles": 3, "channels": [8, 16, 32], "work_sizes": {}}]}
    lines = describe(facts)
    assert "  a.safetensors: 3 styles, channels [8, 16, 32], work sizes full/512 px" in lines
    assert "  b.safetensors: 3 styles, channels [8, 16, 32]" in lines


@pytest.mark.parametrize("model", ["stylize-22", "stylize-22-small", "stylize-22-fast"])
def test_the_shipped_models_have_the_sizes_the_card_lists(model: str):
    """Every shipped model paints a painting at the same size: stroke scale is the painting's,
    chosen by eye on stylize-22 (its card's Styles table), and the small and fast networks
    paint strokes of the same scale at it."""
    root = Path(__file__).resolve().parent.parent
    rows = [line.split("|") for line in (root / "models/stylize-22/README.md").read_text().splitlines()
            if line.startswith("| `")]
    card = {row[1].strip(" `"): int(row[5]) for row in rows if len(row) == 7}
    sizes = read_header(root / "weights" / f"{model}.safetensors").meta["work_sizes"]
    assert len(card) == 22 and sizes == card
    assert sizes["starry_night"] == 512 and sizes["mondrian_composition"] == 384
    assert OnnxStylizer.load(root / "weights" / f"{model}.safetensors").work_sizes == sizes  # the shipped graph's


def test_a_student_paints_at_its_teachers_sizes(sized: Path, tmp_path: Path):
    from stylize.config import DistillSettings
    from stylize.train.distill import distill

    photos = tmp_path / "photos"
    make_photo(photos / "p.png", size=(64, 56))
    out = tmp_path / "student.safetensors"
    settings = DistillSettings(steps=1, batch_size=1, image_size=32, resize=48, checkpoint_minutes=0)
    distill(sized, photos, out, settings, preview_photo=torch.rand(3, 24, 32))
    assert checkpoint.load(out).work_sizes == SIZES
