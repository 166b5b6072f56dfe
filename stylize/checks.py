"""Values read from untrusted files (checkpoints, caches): checked for type and range, shown safely.

A checkpoint's metadata is JSON anyone can write; these checks turn a wrong value into a
one-line :class:`~stylize.errors.StylizeError` instead of a crash deep in the code that uses it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from .errors import StylizeError

_AT_LEAST_ONE = frozenset({"steps", "batch_size", "image_size", "resize", "style_size", "checkpoint_every",
                           "preview_every", "log_every"})
_ANY_SIGN = frozenset({"seed"})


def checked_fields(cls: type, data: object, what: str) -> dict:
    """The fields of dataclass ``cls`` found in ``data``, each of its default's type and in range.

    A field whose default is ``None`` (optional) is passed through for ``cls`` to judge.
    """
    if not isinstance(data, dict):
        raise StylizeError(f"checkpoint {what} are {shown(data)}, not a mapping")
    values = {}
    for spec in dataclasses.fields(cls):
        if spec.name not in data:
            continue
        value, default = data[spec.name], spec.default
        if default is not dataclasses.MISSING and default is not None:
            if isinstance(default, bool):
                ok = isinstance(value, bool)
            elif isinstance(default, int):
                ok = is_int(value) and (spec.name in _ANY_SIGN or value >= (spec.name in _AT_LEAST_ONE))
            elif isinstance(default, float):
                ok = is_number(value) and value >= 0
            elif isinstance(default, tuple):  # JSON has lists
                ok = isinstance(value, (list, tuple)) and all(map(is_number, value))
            else:
                ok = type(value) is type(default)
            if not ok:
                raise StylizeError(f"checkpoint {what}: {spec.name} is {shown(value)}, not a valid "
                                   f"{type(default).__name__}")
        values[spec.name] = value
    return values


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool), as read from JSON."""
    try:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def is_int(value: Any) -> bool:
    """An int that is not a bool (JSON ``true`` is a Python int)."""
    return isinstance(value, int) and not isinstance(value, bool)


def shown(value: Any) -> str:
    """A value from a file, for a message: escaped, and cut short."""
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
