"""A serialized ONNX model read without the onnx package: its metadata and its initializers.

The apply side checks a graph against its source before running it (:mod:`stylize.apply.graphs`:
the checkpoint's tensors; :mod:`stylize.apply.sessions`: the source graph's metadata) in a process
that imports neither onnx nor PyTorch, and ONNX Runtime opens a model but does not hand its
initializers back. So the protobuf wire format is read here directly: ``ModelProto``'s graph
(field 7) and ``metadata_props`` (14), ``GraphProto``'s initializers (5), ``TensorProto``'s dims
(1), data type (2), float data (4), name (8) and raw data (9).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

FLOAT = 1
"""``TensorProto.FLOAT``: the only initializer type of stylize's graphs."""


def metadata(data: bytes) -> dict[str, str] | None:
    """The ``metadata_props`` of serialized model ``data``, or None if it does not parse as one."""
    try:
        found: dict[str, str] = {}
        for field, value in fields(data):
            if field == 14:
                entry = dict(fields(value))
                found[entry.get(1, b"").decode()] = entry.get(2, b"").decode()
        return found
    except (ValueError, UnicodeDecodeError, TypeError, AttributeError):
        return None


def initializers(data: bytes) -> dict[str, np.ndarray] | None:
    """The initializers of serialized model ``data`` by name (float32 arrays), or None if it does not
    parse as a model or holds an initializer of another type, a repeated name or external data."""
    try:
        tensors: dict[str, np.ndarray] = {}
        for field, graph in fields(memoryview(data)):  # views: the weights are not copied on the way
            if field != 7:
                continue
            for entry, tensor in fields(graph):
                if entry != 5:
                    continue
                name, array = _tensor(tensor)
                if name in tensors:
                    return None
                tensors[name] = array
        return tensors
    except (ValueError, UnicodeDecodeError, TypeError, AttributeError):
        return None


def _tensor(data: memoryview) -> tuple[str, np.ndarray]:
    """(name, values) of a serialized float ``TensorProto``; ``ValueError`` for anything else."""
    dims: list[int] = []
    kind, name, values = None, "", []
    for field, value in fields(data):
        if field == 1:
            dims.extend(_packed(value) if isinstance(value, memoryview) else [value])
        elif field == 2:
            kind = value
        elif field in (4, 9):
            values.append(value)
        elif field == 8:
            name = bytes(value).decode()
        elif field in (13, 14):  # external data
            raise ValueError("external data")
    if kind != FLOAT:
        raise ValueError(f"tensor type {kind}")
    if len(values) != 1:
        raise ValueError("no data, or both kinds")
    array = np.frombuffer(values[0], "<f4")
    if array.size != int(np.prod(dims, dtype=np.int64)):
        raise ValueError("size")
    return name, array.reshape(dims)


def _packed(data: memoryview) -> list[int]:
    """Packed varints."""
    values, pos = [], 0
    while pos < len(data):
        value, pos = _varint(data, pos)
        values.append(value)
    return values


def fields(data: bytes | memoryview) -> Iterator[tuple[int, int | bytes | memoryview]]:
    """(field number, value) of a protobuf message's top level: ints for varints and fixed
    widths, slices of ``data`` for length-delimited fields; ``ValueError`` on anything malformed."""
    pos = 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise ValueError("truncated")
            value, pos = data[pos:pos + size], pos + size
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            if pos + width > len(data):
                raise ValueError("truncated")
            value, pos = int.from_bytes(bytes(data[pos:pos + width]), "little"), pos + width
        else:
            raise ValueError(f"wire type {wire}")
        yield field, value


def _varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """A base-128 varint at ``pos``: (value, position after it)."""
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("bad varint")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos
