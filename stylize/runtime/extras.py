"""The optional parts of the install, and the one-line error that names the one to add.

The plain install applies styles on ONNX Runtime; PyTorch comes with the extras
(``pyproject.toml``): ``torch`` for the torch backend (GPUs, half precision), editing
and exporting models and making a model's ONNX graph; ``train`` adds the loss network
for ``train``, ``add-style``, ``evaluate`` and ``apply --style-image``.
"""

from __future__ import annotations

from importlib.util import find_spec

from .. import DISTRIBUTION, __version__
from ..errors import StylizeError

MODULES = {"torch": ("torch", "onnx"), "train": ("torch", "onnx")}
"""What each extra brings that the code imports (the train extra's VGG weights are checked
where they are read, :mod:`stylize.train.vgg`)."""

WHAT = {"torch": "PyTorch", "train": "PyTorch and the training extras"}


def missing_extra(extra: str, what: str) -> StylizeError:
    """The one-line error for ``what`` needing ``extra``, which is not installed.

    It names the commands that work while the package is not on PyPI: from a checkout, and
    from the wheel built from one.
    """
    wheel = f"{DISTRIBUTION.replace('-', '_')}-{__version__}-py3-none-any.whl"
    return StylizeError(f"{what} needs {WHAT[extra]}, which the plain install leaves out: "
                        f"in a checkout, pip install -e '.[{extra}]'; from a wheel, pip install '{wheel}[{extra}]'")


def require(extra: str, what: str) -> None:
    """Raise :func:`missing_extra`'s error unless every module of ``extra`` is installed."""
    if not all(find_spec(name) is not None for name in MODULES[extra]):
        raise missing_extra(extra, what)


def provides(extra: str, exc: ModuleNotFoundError) -> bool:
    """Whether the failed import ``exc`` is of a module that ``extra`` installs."""
    return (exc.name or "").split(".")[0] in MODULES[extra]
