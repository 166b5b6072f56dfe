"""What ``--style`` accepts: a name, a mix of names, or ``all``.

Style names come from painting file names (``starry_night``, ``the_scream``), which
nobody wants to type in full, so a name matches, case-insensitively and in this order:
exactly, by a unique prefix (``starry``), or by a unique prefix of one of its words
(``wave`` for ``great_wave``, ``scream`` for ``the_scream``). The first rule with a hit
decides. Several hits are an ambiguity, and the error names the candidates rather than
guessing, except when one hit heads all the others word by word: ``starry`` means
``starry_night`` beside ``starry_night_over_the_rhone``, since the longer name can be
reached by typing more of it (``rhone``) and the shorter one otherwise only in full.

A mix (``starry:0.7,wave:0.3``) blends styles through the conditional instance norm's
(gamma, beta) pairs; its weights are normalized to sum to 1, so ``a:2,b:1`` means
two thirds of ``a``. This module is pure Python: choosing a style needs no torch.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from ..errors import StylizeError, unprintable

ALL = "all"
"""The ``--style`` word that renders every style of the model, one output each."""

MIX_EXAMPLE = "starry:0.7,wave:0.3"

RESERVED_CHARACTERS = ":,/\\"
"""``:`` and ``,`` separate a mix in ``--style a:0.7,b:0.3``; slashes would land in output file names."""

_WORD_SEPARATORS = re.compile(r"[_\-\s]+")


@dataclass(frozen=True)
class StyleChoice:
    """One rendering to make: per-style weights (summing to 1) and a name for its file.

    ``label`` becomes the output suffix (``photo-starry_night.jpg``); a mix is labelled
    by its parts in percent (``starry_night70+great_wave30``), or by its one style when
    only one weight is positive, since that mix renders exactly that style.
    """

    label: str
    weights: tuple[float, ...]


def find_style(query: str, names: Sequence[str]) -> int:
    """Index of the style ``query`` names: exact, then prefix, then word prefix."""
    wanted = normalize_name(query)
    if not wanted:
        raise StylizeError(f"empty style name; this model has: {', '.join(names)}")
    lowered = [normalize_name(name) for name in names]
    rules = (
        lambda name: name == wanted,
        lambda name: name.startswith(wanted),
        lambda name: any(word.startswith(wanted) for word in name.split("_")),
    )
    for rule in rules:
        hits = [i for i, name in enumerate(lowered) if rule(name)]
        if len(hits) == 1:
            return hits[0]
        head = _head_of(hits, lowered)
        if head is not None:
            return head
        if hits:
            matches = ", ".join(names[i] for i in hits)
            raise StylizeError(f"style {query!r} is ambiguous: it matches {matches}; type more of the name")
    raise StylizeError(f"unknown style {query!r}; this model has: {', '.join(names)}")


def choose(style: str | Mapping[str, float] | None, names: Sequence[str]) -> list[StyleChoice]:
    """Turn what the user asked for into the renderings to make.

    ``None`` picks the only style of a one-style model (several: an error listing
    them); ``"all"`` gives every style; a string with ``:`` or ``,`` or a mapping of
    names to weights gives one mix; anything else one style by :func:`find_style`.
    """
    if style is None:
        if len(names) == 1:
            return [_single(0, names)]
        raise StylizeError(f"choose a style with --style; this model has: {', '.join(names)} (or 'all')")
    if isinstance(style, Mapping):
        return [_mix(list(style.items()), names, str(dict(style)))]
    if style.strip().lower() == ALL:
        return [_single(i, names) for i in range(len(names))]
    if ":" in style or "," in style:
        return [_mix(_parse_mix(style), names, style)]
    return [_single(find_style(style, names), names)]


def own_work_size(choice: StyleChoice, names: Sequence[str], sizes: Mapping[str, int]) -> int | None:
    """The work size a rendering of ``choice`` takes from the model (``sizes``: style name -> size):
    that of its style, or for a mix that of its heaviest-weighted style (the first of equals);
    ``None`` where that style has none of its own.

    Strokes cannot be blended like colours: a mix is painted at one size, the one of the style
    it is mostly made of.
    """
    heaviest = max(range(len(names)), key=lambda i: (choice.weights[i], -i))
    return sizes.get(names[heaviest])


def _head_of(hits: list[int], lowered: Sequence[str]) -> int | None:
    """The hit whose name, plus ``_``, begins every other hit's name; ``None`` if there is none."""
    for i in hits:
        if all(j == i or lowered[j].startswith(lowered[i] + "_") for j in hits):
            return i
    return None


def forbidden_character(character: str) -> bool:
    """Characters no style name may hold: the reserved ones, and control, format and line
    separator characters (which could fake lines or move the cursor when a name is printed)."""
    return character in RESERVED_CHARACTERS or unprintable(character)


def check_style_name(name: str) -> None:
    """Refuse a name that could not be typed in ``--style``, would break output file names, or
    could disturb a terminal; the one rule for names made by ``add-style`` and names loaded
    from a checkpoint."""
    if not name.strip():
        raise StylizeError("a style name cannot be empty")
    bad = [c for c in name if forbidden_character(c)]
    if bad:
        raise StylizeError(f"style name {name!r} contains {bad[0]!r}; names cannot contain {RESERVED_CHARACTERS} "
                           "or control characters")
    if normalize_name(name) == ALL:
        raise StylizeError(f"{name!r} is reserved (--style {ALL} renders every style); choose another name")


def normalize_name(name: str) -> str:
    """Lower case, with runs of spaces, hyphens and underscores as one underscore."""
    return _WORD_SEPARATORS.sub("_", name.strip().lower())


def _single(index: int, names: Sequence[str]) -> StyleChoice:
    weights = tuple(1.0 if i == index else 0.0 for i in range(len(names)))
    return StyleChoice(label=names[index], weights=weights)


def _parse_mix(spec: str) -> list[tuple[str, object]]:
    """``"a:0.7,b:0.3"`` -> ``[("a", "0.7"), ("b", "0.3")]``; weights are checked in :func:`_mix`."""
    pairs = []
    for part in spec.split(","):
        name, colon, weight = part.partition(":")
        if not colon or not name.strip() or not weight.strip():
            raise StylizeError(f"bad style mix {spec!r}: expected NAME:WEIGHT,NAME:WEIGHT..., e.g. {MIX_EXAMPLE}")
        pairs.append((name, weight))
    return pairs


def _mix(pairs: list[tuple[str, object]], names: Sequence[str], spec: str) -> StyleChoice:
    """Resolve each name, check each weight, normalize the weights to sum to 1."""
    if not pairs:
        raise StylizeError(f"bad style mix {spec!r}: it names no style, e.g. {MIX_EXAMPLE}")
    weights = [0.0] * len(names)
    seen: set[int] = set()
    for name, raw in pairs:
        index = find_style(str(name), names)
        if index in seen:
            raise StylizeError(f"style {names[index]} appears twice in mix {spec!r}")
        seen.add(index)
        try:
            weight = float(str(raw).strip())
        except ValueError:
            weight = math.nan
        if not math.isfinite(weight) or weight < 0:
            raise StylizeError(f"bad weight {raw!r} for style {names[index]} in mix {spec!r}: "
                               "weights are numbers >= 0")
        weights[index] = weight
    total = sum(weights)
    if total <= 0:
        raise StylizeError(f"the weights of mix {spec!r} sum to 0; give at least one a positive weight")
    normalized = tuple(w / total for w in weights)
    parts = [(names[i], w) for i, w in enumerate(normalized) if w > 0]
    label = parts[0][0] if len(parts) == 1 else "+".join(f"{name}{round(w * 100)}" for name, w in parts)
    return StyleChoice(label=label, weights=normalized)
