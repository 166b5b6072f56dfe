"""The graph cache: whatever is found under a checkpoint's key is checked against it, else made again."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_STYLES, make_photo, make_tiny_model
from stylize.apply import graphs
from stylize.io.images import read_image
from stylize.apply.onnx_backend import OnnxStylizer
from stylize.io.weights import file_sha256


def render(stylizer: OnnxStylizer, photo: np.ndarray) -> np.ndarray:
    return stylizer.stylize(photo, stylizer.choose("scream")[0])


@pytest.fixture
def photo(tmp_path: Path) -> np.ndarray:
    return read_image(make_photo(tmp_path / "p.png", (40, 32), seed=2), arrays=True).rgb


def edited(graph: bytes, weight: str | None = None, styles: list[str] | None = None) -> bytes:
    """``graph`` with its mark kept and one initializer moved by 0.5 (``onnx::``: the first unnamed one,
    the last convolution's rows), or other style names."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(graph)
    for tensor in model.graph.initializer:
        if tensor.name == weight or (weight == "onnx::" and tensor.name.startswith(weight)):
            weight = tensor.name
            tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor) + np.float32(0.5), tensor.name))
    for prop in model.metadata_props:
        if prop.key == "styles" and styles is not None:
            prop.value = json.dumps(styles)
    return model.SerializeToString()


EDITS = {"edited-weights": dict(weight="net.up.0.conv.bias"),  # same mark, wrong picture
         "edited-rows": dict(weight="onnx::"),
         "edited-names": dict(styles=["evil\x1b[2J", *TINY_STYLES[1:]]),
         "fewer-styles": dict(styles=TINY_STYLES[:2])}


@pytest.mark.parametrize("damage", ["corrupt", "truncated", "empty", "symlink", "another-models", "older-layout",
                                    *EDITS])
def test_a_damaged_cached_graph_is_made_again(damage: str, tmp_path: Path, photo: np.ndarray):
    model = make_tiny_model(tmp_path / "m.safetensors", seed=5)
    expected = render(OnnxStylizer.load(model), photo)
    digest = file_sha256(model)
    cached = graphs.cached(digest)
    good = cached.read_bytes()
    elsewhere = tmp_path / "elsewhere.onnx"
    if damage == "corrupt":
        cached.write_bytes(b"\x08\x07not a graph" * 64)
    elif damage == "truncated":
        cached.write_bytes(good[:len(good) // 2])
    elif damage == "empty":
        cached.write_bytes(b"")
    elif damage == "symlink":  # even to a good graph: the cache holds only files it wrote
        elsewhere.write_bytes(good)
        cached.unlink()
        cached.symlink_to(elsewhere)
    elif damage in EDITS:
        cached.write_bytes(edited(good, **EDITS[damage]))
        assert OnnxStylizer(cached).metadata[graphs.SOURCE_KEY] == digest  # it opens, and its mark is right
    elif damage == "another-models":
        other = make_tiny_model(tmp_path / "other.safetensors", seed=6)
        OnnxStylizer.load(other)
        cached.write_bytes(graphs.cached(file_sha256(other)).read_bytes())
    else:  # the right checkpoint's graph without this GRAPH_VERSION's mark (same length: still a valid graph)
        assert good.count(graphs.VERSION_KEY.encode()) == 1
        cached.write_bytes(good.replace(graphs.VERSION_KEY.encode(), b"graph_versiom"))
        assert graphs.VERSION_KEY not in OnnxStylizer(cached).metadata
    made = []
    again = OnnxStylizer.load(model, on_make=made.append)
    assert made == [model]
    assert np.abs(render(again, photo) - expected).max() < 1e-5
    assert not cached.is_symlink() and OnnxStylizer(cached).metadata[graphs.SOURCE_KEY] == digest
    if damage == "symlink":
        assert elsewhere.read_bytes() == good  # the link's target is not touched


def test_an_edited_graph_beside_a_model_is_passed_over_and_kept(tmp_path: Path, photo: np.ndarray):
    model = make_tiny_model(tmp_path / "m.safetensors", seed=9)
    graphs.export_graph(model, graphs.beside(model))
    expected = render(OnnxStylizer.load(model), photo)
    mine = edited(graphs.beside(model).read_bytes(), weight="net.res.0.a.conv.weight")
    graphs.beside(model).write_bytes(mine)
    made = []
    again = OnnxStylizer.load(model, on_make=made.append)
    assert made == [model] and np.abs(render(again, photo) - expected).max() < 1e-5
    assert graphs.beside(model).read_bytes() == mine  # not the cache's: left as it is


def test_a_graphs_weights_read_without_onnx_are_onnxs(tmp_path: Path):
    import onnx
    from onnx import numpy_helper

    from stylize.apply import onnx_wire

    model = make_tiny_model(tmp_path / "m.safetensors", seed=10)
    graph = graphs.export_graph(model, graphs.beside(model)) and graphs.beside(model).read_bytes()
    theirs = {t.name: numpy_helper.to_array(t) for t in onnx.load_from_string(graph).graph.initializer}
    ours = onnx_wire.initializers(graph)
    assert ours is not None and sorted(ours) == sorted(theirs)
    assert all(ours[name].shape == theirs[name].shape and np.array_equal(ours[name], theirs[name]) for name in ours)
    assert onnx_wire.initializers(graph[:len(graph) // 2]) is None and onnx_wire.initializers(b"\xff\xff") is None


def test_a_good_cached_graph_is_used_as_it_is(tmp_path: Path):
    model = make_tiny_model(tmp_path / "m.safetensors", seed=7)
    OnnxStylizer.load(model)
    made = []
    OnnxStylizer.load(model, on_make=made.append)
    assert made == []


def test_an_exported_graph_beside_its_model_is_used_without_making_one(tmp_path: Path, photo: np.ndarray):
    """`stylize export --onnx MODEL.onnx` is one library call, and apply takes its output as the model's graph."""
    from stylize.errors import StylizeError

    model = make_tiny_model(tmp_path / "m.safetensors", seed=8)
    styles = graphs.export_graph(model, graphs.beside(model))
    assert styles == TINY_STYLES
    made = []
    stylizer = OnnxStylizer.load(model, on_make=made.append)
    assert made == [] and not graphs.cached(file_sha256(model)).exists()  # the graph beside it, nothing made
    assert stylizer.styles == styles
    with pytest.raises(StylizeError, match="--overwrite"):
        graphs.export_graph(model, graphs.beside(model))
    assert graphs.export_graph(model, graphs.beside(model), overwrite=True) == styles
    with pytest.raises(StylizeError):
        graphs.export_graph(model, model, overwrite=True)  # never the checkpoint itself
