"""What ``stylize info`` reports: versions, devices, backends, and the model files it sees."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from .. import __version__
from ..io.weights import WEIGHTS_DIR, cache_dir, default_model


def _package(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def torch_devices() -> list[str]:
    """The devices PyTorch can use (importing it takes seconds, so only when asked)."""
    import torch

    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def gather(ask_torch: bool = False) -> dict[str, Any]:
    """Everything ``info`` prints, as plain data; ``ask_torch``: also which GPUs PyTorch sees
    (``devices`` is None otherwise, or without PyTorch)."""
    from ..errors import StylizeError
    from ..model.header import read_header
    from ..apply.onnx_backend import onnx_backend_applies

    devices = torch_devices() if ask_torch and _package("torch") else None
    try:
        default: str | None = str(default_model())
    except StylizeError:
        default = None
    models = []
    for path in sorted(WEIGHTS_DIR.glob("*.safetensors")) if WEIGHTS_DIR.is_dir() else []:
        try:
            meta = read_header(path).meta
            models.append({"path": str(path), "styles": len(meta["styles"]), "channels": meta["config"]["channels"],
                           "work_sizes": meta.get("work_sizes", {})})
        except StylizeError as exc:
            models.append({"path": str(path), "error": str(exc)})
    graphs = sorted((cache_dir() / "onnx").glob("*.onnx")) if (cache_dir() / "onnx").is_dir() else []
    providers = None
    if _package("onnxruntime"):
        import onnxruntime

        providers = onnxruntime.get_available_providers()
    return {
        "stylize": __version__,
        "python": platform.python_version(),
        "torch": _package("torch"),
        "onnxruntime": _package("onnxruntime"),
        "onnxruntime_providers": providers,
        "onnx": _package("onnx"),
        "av": _package("av"),
        "devices": devices,
        "apply_backend_on_cpu": "onnx" if onnx_backend_applies("auto", "cpu", "auto") else "torch",
        "default_model": default,
        "default_model_exists": default is not None and Path(default).is_file(),
        "models": models,
        "cache": str(cache_dir()),
        "cached_onnx_graphs": [str(Path(g).name) for g in graphs],
    }


def work_sizes(model: dict[str, Any]) -> str:
    """``, work sizes 384/512/1024 px`` (each size a style of it has; 0 is ``full``) for a model
    whose styles have sizes of their own (``stylize styles`` tells which), else nothing."""
    sizes = sorted(set(model.get("work_sizes", {}).values()))
    return f", work sizes {'/'.join(str(s) if s else 'full' for s in sizes)} px" if sizes else ""


def describe(info: dict[str, Any]) -> list[str]:
    """The lines ``stylize info`` prints for people."""
    def have(name: str) -> str:
        return info[name] or "not installed"

    lines = [
        f"stylize {info['stylize']} (python {info['python']})",
        f"torch {have('torch')}; devices: " + (', '.join(info["devices"]) if info["devices"] else
                                               "cpu; --devices asks PyTorch for GPUs"),
        f"onnxruntime {have('onnxruntime')}" + (f" ({', '.join(info['onnxruntime_providers'])})"
                                                if info["onnxruntime_providers"] else ""),
        f"onnx {have('onnx')}; PyAV (videos) {have('av')}",
        f"apply on a CPU runs on: {info['apply_backend_on_cpu']}",
        f"default model: {info['default_model'] or 'none (pass --model)'}"
        + ("" if not info["default_model"] or info["default_model_exists"]
           else " (does not exist: check $STYLIZE_MODEL)"),
    ]
    for model in info["models"]:
        detail = model.get("error") or f"{model['styles']} styles, channels {model['channels']}" + work_sizes(model)
        lines.append(f"  {model['path']}: {detail}")
    lines.append(f"cache: {info['cache']} ({len(info['cached_onnx_graphs'])} ONNX graphs)")
    return lines
