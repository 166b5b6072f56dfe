"""Every default and every fact of the architecture, written once, without torch.

One package, read as one module (``from stylize.config import ...``): :mod:`.network` holds the
architecture, :mod:`.apply` the defaults of applying, :mod:`.train` those of learning.

Plain dataclasses and constants, so that the command line shows each default in its
``--help`` from here (and ``stylize --help`` stays fast), and the library takes them from
here too: nothing restates a number that lives here. The settings are frozen and checked
on creation. A checkpoint stores its :class:`NetConfig` and :class:`TrainSettings`, and
:meth:`TrainSettings.from_dict` is the one way back from that metadata, with changes.
"""

from __future__ import annotations

from .network import (  # noqa: F401  (re-exported)
    ALIGN, MIN_SIZE, NetConfig, PRESETS, check_size,
)
from .apply import (  # noqa: F401  (re-exported)
    AUTO_TILE_ONNX, AUTO_TILE_OTHER, ApplySettings, BACKENDS, BatchOptions, CUDA_FAST_PATH, DEFAULT_CRF,
    DEFAULT_MAX_PIXELS, DEFAULT_QUALITY, DEFAULT_SMOOTHING, DEVICE_KINDS, EDGE_BORDER, PRECISIONS,
    SHEET_CELL, SHEET_MAX_COLUMNS, VideoSettings, WORK_SIZE, check_device_name, check_max_pixels,
    check_quality,
)
from .train import (  # noqa: F401  (re-exported)
    ADD_STEPS, DistillSettings, EVALUATE_BUDGETS, EVALUATE_SIZE, LAYERS, LossWeights, QUICK_CPU,
    QUICK_GPU, STYLE_LR, TrainSettings, cosine_lr,
)
