"""The graph cache: whatever is found under a checkpoint's key is checked against it, else made again."""

from __future__ import annotations

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


@pytest.mark.parametrize("damage", ["corrupt", "truncated", "empty", "symlink", "another-models", "older-layout"])
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
