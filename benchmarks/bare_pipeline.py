"""The least a Python process can do to make ``stylize apply PHOTO --style STYLE``'s picture: the floor.

Interpreter, numpy, Pillow and ONNX Runtime, and nothing of stylize: the session opened from the
optimized graph that ``stylize apply`` cached (its path is an argument: ``end_to_end.py --bare``
asks stylize where it is, untimed), then decode, resize to the style's work size, the network,
the photo's detail restored at full size on 8-bit planes (as ``stylize apply`` does for an
8-bit photo), JPEG at quality 95. No command line, no checks of the input, no atomic write,
no metadata kept. Its picture matches ``stylize apply``'s, so the gap
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


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(image, 0, 1) * np.float32(255)).astype(np.uint8)


def main(photo: str, out: str, optimized: str, style: str = "starry_night") -> None:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only, as stylize's sessions
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(optimized, options, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    styles = json.loads(meta["styles"])
    work = json.loads(meta.get("work_sizes", "{}")).get(style, 1024)
    image = Image.open(photo)
    image.load()
    width, height = image.size
    scale = work / max(height, width)
    h, w = round(height * scale), round(width * scale)
    small = np.empty((3, h, w), np.float32)
    for plane, band in zip(small, image.resize((w, h), Image.BILINEAR).split()):
        np.divide(np.asarray(band), np.float32(255), out=plane)
    weights = np.zeros((1, len(styles)), np.float32)
    weights[0, styles.index(style)] = 1
    padded = np.pad(small, ((0, 0), (BORDER, BORDER), (BORDER, BORDER)), mode="reflect")
    painted = session.run(None, {"image": padded[None], "style": weights})[0][0, :, BORDER:BORDER + h, BORDER:BORDER + w]
    small_luma = small[0] * LUMA[0]
    small_luma += small[1] * LUMA[1]
    small_luma += small[2] * LUMA[2]
    planes = [*to_uint8(painted), to_uint8(small_luma)]
    up = Image.merge("RGBX", [Image.fromarray(p) for p in planes]).resize((width, height), Image.BICUBIC)
    red, green, blue, up_luma = (np.asarray(band, np.int16) for band in up.split())
    detail = np.asarray(image.convert("L"), np.int16) - up_luma
    result = [Image.fromarray(np.clip(band + detail, 0, 255).astype(np.uint8)) for band in (red, green, blue)]
    Image.merge("RGB", result).save(out, quality=95)
    os._exit(0)  # as the stylize command ends: no interpreter teardown


if __name__ == "__main__":
    main(*sys.argv[1:])
