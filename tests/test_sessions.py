"""ONNX Runtime sessions from the optimized-graph cache: opened without optimizing, never a wrong graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stylize.apply import graphs, onnx_wire, sessions
from stylize.apply.onnx_backend import OnnxStylizer
from stylize.io.weights import file_sha256

ort = pytest.importorskip("onnxruntime")


def graph_of(model: Path) -> bytes:
    OnnxStylizer.load(model)  # made once and cached, as a first apply does
    return graphs.cached(file_sha256(model)).read_bytes()


@pytest.fixture
def graph(tiny_model: Path) -> bytes:
    return graph_of(tiny_model)


def render(session) -> np.ndarray:
    """The graph's output for a fixed photo in its first style (prior inputs at zero)."""
    feed = {}
    for node in session.get_inputs():
        shape = [1 if not isinstance(d, int) else d for d in node.shape]
        if node.name == "image":
            feed[node.name] = np.random.default_rng(0).random((1, 3, 24, 32), dtype=np.float32)
        elif node.name == "style":
            feed[node.name] = np.eye(shape[1], dtype=np.float32)[:1]
        else:
            feed[node.name] = np.zeros(shape, np.float32)
    return session.run(["stylized"], feed)[0]


def optimized(graph: bytes) -> Path:
    return sessions.optimized_path(ort.__version__, graph)


def test_metadata_read_from_the_bytes_is_onnx_runtimes(graph: bytes):
    session = sessions.open_session(graph, 1)
    assert onnx_wire.metadata(graph) == dict(session.get_modelmeta().custom_metadata_map)
    assert onnx_wire.metadata(graph)[graphs.VERSION_KEY] == str(graphs.GRAPH_VERSION)
    assert onnx_wire.metadata(b"\xff\xff\xff") is None
    assert onnx_wire.metadata(graph[:len(graph) // 2]) is None  # cut inside the graph's field


def test_the_second_opening_uses_the_cached_optimized_graph(graph: bytes, monkeypatch: pytest.MonkeyPatch):
    optimized(graph).unlink(missing_ok=True)
    first = sessions.open_session(graph, 1)
    assert optimized(graph).is_file()
    opened = []
    real = sessions._session
    monkeypatch.setattr(sessions, "_session", lambda *a, **k: opened.append(k) or real(*a, **k))
    second = sessions.open_session(graph, 1)
    assert opened == [{"optimize": False}]  # no optimization, nothing saved
    assert np.array_equal(render(first), render(second))


@pytest.mark.parametrize("damage", ["corrupt", "truncated", "empty", "symlink", "another-graph"])
def test_a_damaged_optimized_graph_is_passed_over_and_replaced(damage: str, graph: bytes, tiny_fast_model: Path,
                                                               tmp_path: Path):
    path = optimized(graph)
    expected = render(sessions.open_session(graph, 1))
    good = path.read_bytes()
    if damage == "corrupt":
        path.write_bytes(b"\x08\x07garbage" * 64)
    elif damage == "truncated":
        path.write_bytes(good[:len(good) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "symlink":  # even to the right bytes: the cache holds only files it wrote
        elsewhere = tmp_path / "elsewhere.onnx"
        elsewhere.write_bytes(good)
        path.unlink()
        path.symlink_to(elsewhere)
    else:  # another model's optimized graph under this graph's key
        other = graph_of(tiny_fast_model)
        sessions.open_session(other, 1)
        path.write_bytes(optimized(other).read_bytes())
    assert np.array_equal(render(sessions.open_session(graph, 1)), expected)
    assert path.is_file() and not path.is_symlink()
    assert onnx_wire.metadata(path.read_bytes()) == onnx_wire.metadata(graph)


def test_an_unwritable_cache_costs_only_the_shortcut(graph: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("STYLIZE_CACHE_DIR", str(blocker / "cache"))
    assert np.array_equal(render(sessions.open_session(graph, 1)), render(ort.InferenceSession(graph)))
    assert list(tmp_path.iterdir()) == [blocker]


def test_the_key_changes_with_the_runtime_and_the_graph(graph: bytes):
    assert optimized(graph) != sessions.optimized_path("0.0.0", graph)
    assert optimized(graph) != optimized(graph + b"\x00")
    assert optimized(graph).parent == graphs.cached("0" * 64).parent / "optimized"


def test_a_file_that_is_no_graph_is_refused_in_one_line(tmp_path: Path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a graph")
    with pytest.raises(sessions.StylizeError, match=r"bad\.onnx: not a usable ONNX graph"):
        sessions.open_session(bad, 1)
    with pytest.raises(sessions.StylizeError, match="cannot read"):
        sessions.open_session(tmp_path / "missing.onnx", 1)
