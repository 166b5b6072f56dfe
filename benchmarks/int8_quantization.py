"""Would int8 make ``apply``'s ONNX path faster? ONNX Runtime's static quantization of a model's graph.

The graph ``apply`` runs (exported afresh, as :mod:`stylize.apply.graphs` would make it) is quantized the way ONNX Runtime
recommends for CNNs on x86 (QDQ format, per-channel int8 weights, uint8 activations,
calibrated on a few photos), then both graphs run the same photo in turn: the time ratio
(> 1: int8 is faster) and the PSNR of int8 against fp32 per style (the bar for a lower
precision is 40 dB).

    python -m benchmarks.int8_quantization --model weights/stylize-22-small.safetensors \\
        --photos ../shared/data/content/test --photo ../shared/data/content/test/kodak_kodim05.jpg
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
from PIL import Image

from stylize.train.data import list_images
from stylize.model import checkpoint
from stylize.apply.onnx_backend import resize_long_side
from stylize.model.onnx_export import export_onnx


def load(path: Path, size: int) -> np.ndarray:
    """A (1, 3, H, W) float batch in [0, 1], long side ``size``, resized as ``apply``'s ONNX path does."""
    with Image.open(path) as img:
        rgb = np.asarray(img.convert("RGB"), np.float32).transpose(2, 0, 1) / 255
    return resize_long_side(rgb, size)[None]


def one_hot(index: int, count: int) -> np.ndarray:
    return np.eye(count, dtype=np.float32)[[index]]


class Calibration(CalibrationDataReader):
    """The calibration feeds: one photo each, styles taken in turn."""

    def __init__(self, photos: list[Path], size: int, n_styles: int) -> None:
        self.feeds = iter([{"image": load(p, size), "style": one_hot(i % n_styles, n_styles)}
                           for i, p in enumerate(photos)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.feeds, None)


def session(graph: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.clip(a, 0, 1) - np.clip(b, 0, 1)) ** 2))
    return 10 * np.log10(1 / mse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="checkpoint (its ONNX graph is quantized)")
    parser.add_argument("--photos", type=Path, required=True, help="folder of calibration photos")
    parser.add_argument("--photo", type=Path, required=True, help="the photo to time and compare")
    parser.add_argument("--calibration", type=int, default=8, help="number of calibration photos")
    parser.add_argument("--calibration-size", type=int, default=384)
    parser.add_argument("--size", type=int, default=1024, help="long side of the timed photo")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: its default)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    photos = [p for p in list_images(args.photos, "calibration photo")
              if p.resolve() != args.photo.resolve()][:args.calibration]
    with tempfile.TemporaryDirectory() as tmp:
        fp32_graph, prepared, quantized = Path(tmp) / "fp32.onnx", Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        export_onnx(checkpoint.load(args.model), fp32_graph)
        fp32 = session(fp32_graph, args.threads)
        n_styles = len(json.loads(fp32.get_modelmeta().custom_metadata_map["styles"]))
        # The symbolic shape pass cannot follow the dynamic height and width; ONNX's own inference can.
        quant_pre_process(str(fp32_graph), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(quantized), Calibration(photos, args.calibration_size, n_styles),
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        int8 = session(quantized, args.threads)

    image = load(args.photo, args.size)
    print("| style | PSNR int8 vs fp32, dB |\n|---|---|")
    for index in sorted({0, n_styles // 3, 2 * n_styles // 3, n_styles - 1}):
        feed = {"image": image, "style": one_hot(index, n_styles)}
        print(f"| {index} | {psnr(fp32.run(None, feed)[0], int8.run(None, feed)[0]):.1f} |")

    feed = {"image": image, "style": one_hot(0, n_styles)}
    times: dict[str, list[float]] = {"fp32": [], "int8": []}
    for _ in range(args.rounds):
        for name, sess in (("fp32", fp32), ("int8", int8)):
            start = time.perf_counter()
            sess.run(None, feed)
            times[name].append(time.perf_counter() - start)
    ratios = [a / b for a, b in zip(times["fp32"], times["int8"])]
    print(f"\n{image.shape[3]}x{image.shape[2]}, median of {args.rounds} interleaved rounds: "
          f"fp32 {np.median(times['fp32']):.2f} s, int8 {np.median(times['int8']):.2f} s, "
          f"speed-up x{np.median(ratios):.2f}")


if __name__ == "__main__":
    main()
