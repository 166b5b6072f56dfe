"""Editing a checkpoint's styles without training: remove, rename, append learned rows.

With conditional instance norm a style *is* one row of every norm layer's ``weight``
(gamma) and ``bias`` (beta), both stored as (n_styles, C); every other tensor is shared.
So removing a style drops a row, appending one adds a row, and the shared weights and
the other styles' rows stay bit-identical. Every function here returns a new
:class:`~stylize.model.checkpoint.Checkpoint` and leaves its input untouched.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from torch import Tensor

from ..errors import StylizeError
from .checkpoint import Checkpoint, load, save, stores_half
from .network import StyleNet
from .norm import ConditionalInstanceNorm2d
from .styles import check_new_name, name_key


def style_row_keys(net: StyleNet) -> list[str]:
    """State-dict keys of every per-style tensor (each norm's weight and bias), in module order."""
    return [f"{name}.{param}" for name, module in net.named_modules()
            if isinstance(module, ConditionalInstanceNorm2d) for param in ("weight", "bias")]


def edit_rows(ckpt: Checkpoint, styles: Sequence[str], rows: Callable[[str, Tensor], Tensor]) -> Checkpoint:
    """A copy of ``ckpt`` whose per-style tensor ``key`` becomes ``rows(key, old)``, named ``styles``.

    The copy has no optimizer state: Adam's moments would no longer match the rows.
    """
    state = ckpt.net.state_dict()
    for key in style_row_keys(ckpt.net):
        state[key] = rows(key, state[key])
    net = StyleNet(dataclasses.replace(ckpt.net.config, n_styles=len(styles)))
    net.load_state_dict(state)
    net.to(next(ckpt.net.parameters()).device).eval()
    return dataclasses.replace(ckpt, net=net, styles=list(styles), optimizer_state=None)


def check_output(model: Path, output: Path, *, overwrite: bool = False) -> None:
    """Refuse to write over the input model, ever, or over any other file unless ``overwrite``."""
    model, output = Path(model), Path(output)
    linked = model.exists() and output.exists() and os.path.samefile(model, output)
    if linked or model.resolve() == output.resolve():
        raise StylizeError(f"-o {output} is the input model; write to a new file (the input is never modified)")
    if not overwrite and (output.exists() or output.is_symlink()):
        raise StylizeError(f"-o {output} already exists; choose a new file, or pass --overwrite to replace it")
    if not output.parent.is_dir():
        raise StylizeError(f"output folder {output.parent} does not exist")


def write_edited(model: Path, output: Path, edit: Callable[[Checkpoint], Checkpoint], *,
                 half: bool | None = None, overwrite: bool = False) -> Checkpoint:
    """Write ``edit`` of checkpoint ``model`` to ``output`` (without optimizer state) and return it:
    ``remove-style``, ``rename-style``, ``set-work-size`` and ``export -o`` in one call.

    ``output`` is never ``model`` and must be new unless ``overwrite``. ``half``: store fp16
    or fp32; ``None`` keeps ``model``'s own storage, so an edit of a lean fp16 model stays lean.
    """
    check_output(model, output, overwrite=overwrite)
    edited = edit(load(model))
    save(output, edited, half=half if half is not None else stores_half(model), overwrite=overwrite)
    return edited


def remove_styles(ckpt: Checkpoint, names: Sequence[str]) -> Checkpoint:
    """``ckpt`` without the styles called ``names`` (exact names, as `stylize styles` lists them)."""
    unknown = [n for n in names if n not in ckpt.styles]
    if unknown:
        raise StylizeError(f"unknown style {unknown[0]!r}; this model has: {', '.join(ckpt.styles)}")
    keep = [i for i, name in enumerate(ckpt.styles) if name not in names]
    if not keep:
        raise StylizeError("cannot remove every style: a model needs at least one")
    edited = dataclasses.replace(ckpt, work_sizes={k: v for k, v in ckpt.work_sizes.items() if k not in names})
    return edit_rows(edited, [ckpt.styles[i] for i in keep], lambda key, old: old[keep])


def rename_style(ckpt: Checkpoint, old: str, new: str, model: str | Path = "the model") -> Checkpoint:
    """``ckpt`` with style ``old`` called ``new``; the weights are unchanged."""
    if old not in ckpt.styles:
        raise StylizeError(f"unknown style {old!r}; this model has: {', '.join(ckpt.styles)}")
    others = [name for name in ckpt.styles if name != old]
    new = check_new_name(new, others, model)
    sizes = {new if name == old else name: size for name, size in ckpt.work_sizes.items()}
    return dataclasses.replace(ckpt, styles=[new if name == old else name for name in ckpt.styles],
                               work_sizes=sizes, optimizer_state=None)


def set_work_sizes(ckpt: Checkpoint, sizes: Mapping[str, int | None]) -> Checkpoint:
    """``ckpt`` with style ``name`` painted at ``sizes[name]`` px by default (0: full resolution;
    ``None``: no size of its own, :data:`~stylize.config.WORK_SIZE`); the weights are unchanged.

    Names are exact, as `stylize styles` lists them (case, spaces, '-' and '_' aside).
    """
    found = {}
    for name, size in sizes.items():
        exact = [s for s in ckpt.styles if name_key(s) == name_key(name)]
        if not exact:
            raise StylizeError(f"unknown style {name!r}; this model has: {', '.join(ckpt.styles)}")
        if exact[0] in found:
            raise StylizeError(f"style {exact[0]!r} is given twice")
        found[exact[0]] = size
    merged = {**ckpt.work_sizes, **found}
    work_sizes = {name: merged[name] for name in ckpt.styles if merged.get(name) is not None}
    return dataclasses.replace(ckpt, work_sizes=work_sizes, optimizer_state=None)
