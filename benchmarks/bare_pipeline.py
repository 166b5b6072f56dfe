"""The least a Python process can do to make ``stylize apply PHOTO --style STYLE``'s picture: the floor.

Interpreter, numpy, Pillow and ONNX Runtime, and nothing of stylize: the session opened from the
optimized graph that ``stylize apply`` cached (its path is an argument: ``end_to_end.py --bare``
asks stylize where it is, untimed), then decode, resize to the style's work size, the network,
the photo's detail restored at full size, JPEG at quality 95. No command line, no checks of the
input, no atomic write, no metadata kept. Its picture matches ``stylize apply``'s, so the gap
between the two is what the tool itself costs; the floor is what any process running this
network in Python pays.

    python benchmarks/bare_pipeline.py PHOTO OUT OPTIMIZED_GRAPH [STYLE]

Not a module of the package, and not for use.
"""

import json
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the stylize command does

import numpy as np
import onnxruntime as ort
from PIL import Image

LUMA = (0.299, 0.587, 0.114)
BORDER = 16
"""``stylize.config.EDGE_BORDER``, written here to keep stylize's modules out of the floor."""


def planes(image: np.ndarray, size: tuple[int, int], resample: int) -> np.ndarray:
    """Each (H, W) float plane of ``image`` resized to ``size`` (W, H) by Pillow."""
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(p)).resize(size, resample)) for p in image])


def main(photo: str, out: str, optimized: str, style: str = "starry_night") -> None:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only, as stylize's sessions
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(optimized, options, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    styles = json.loads(meta["styles"])
    work = json.loads(meta.get("work_sizes", "{}")).get(style, 1024)
    image = Image.open(photo)
    rgb = np.empty((3, image.height, image.width), np.float32)
    for plane, band in zip(rgb, image.split()):
        np.divide(np.asarray(band), np.float32(255), out=plane)
    height, width = rgb.shape[1:]
    scale = work / max(height, width)
    h, w = round(height * scale), round(width * scale)
    small = np.clip(planes(rgb, (w, h), Image.BILINEAR), 0, 1)
    weights = np.zeros((1, len(styles)), np.float32)
    weights[0, styles.index(style)] = 1
    padded = np.pad(small, ((0, 0), (BORDER, BORDER), (BORDER, BORDER)), mode="reflect")
    painted = session.run(None, {"image": padded[None], "style": weights})[0][0, :, BORDER:BORDER + h, BORDER:BORDER + w]
    small_luma = sum(small[c] * LUMA[c] for c in range(3))
    result = planes(painted - small_luma, (width, height), Image.BICUBIC)
    result += sum(rgb[c] * LUMA[c] for c in range(3))
    pixels = np.rint(np.clip(result, 0, 1) * np.float32(255)).astype(np.uint8)
    Image.merge("RGB", [Image.fromarray(p) for p in pixels]).save(out, quality=95)
    os._exit(0)  # as the stylize command ends: no interpreter teardown


if __name__ == "__main__":
    main(*sys.argv[1:])
