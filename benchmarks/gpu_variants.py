"""Every fast path of the torch backend, timed against the eager fp32 baseline in one call.

    python -m benchmarks.gpu_variants results/variants --budget-s 240      # CUDA: 1024 px, batch 1 and 8
    python -m benchmarks.gpu_variants /tmp/variants --dry-run               # CPU, 64 px: the call works (CI)

Each fast path (:mod:`stylize.runtime.variants`) renders through :class:`stylize.Stylizer`'s own
pass (``Stylizer._forward``: autocast, the fp32 retry check, the compiled or captured network),
on a shipped model, a batch of random images with a different style per image. The baseline
is :mod:`benchmarks.baseline`'s TransformerNet in eager fp32, as in ``benchmarks.speed``.
Calls are interleaved (baseline, path 1, path 2, ..., again) after warm-up calls that also
compile or capture; each rate is the median call, each ratio the median of the per-round ratios
to the baseline. Fidelity: the largest difference from the eager ``fp32`` path in 8-bit levels
and the PSNR; :data:`FIDELITY_DB` is the bar a path must pass to be chosen.

Eager paths run first for every model and batch, the compiled ones (minutes of compiling)
after them, each skipped when the ``--budget-s`` left cannot cover its setup. After every run
``OUT/variants.json`` and ``OUT/variants.md`` (the table, and the fastest path that passes the
bar for each row: the value for :data:`stylize.config.CUDA_FAST_PATH`) are rewritten, so a
window that ends early still brings back what was timed. After the first run (``stylize-22`` at
1024 px, batch 1), ``torch.profiler`` tables of the path ``apply`` runs now and of that run's
fastest say where their time goes (``OUT/profile-*.txt``), for the next round of work.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

EAGER = ["fp32", "fp16", "bf16", "fp16+cl", "bf16+cl", "fp16+bench", "fp16+cl+bench", "fp16+cl+bench+pad8",
         "fp16+gn", "fp16+gn+bench", "bf16+gn+bench", "fp16+cl+cnorm", "fp16+graphs", "fp16+cl+graphs",
         "fp16+cl+bench+graphs", "fp16+cl+bench+pad8+graphs", "fp16+gn+bench+graphs", "fp16+gn+bench+pad8+graphs",
         "bf16+cl+bench+graphs", "fp16+cl+cnorm+graphs"]
"""Eager paths, cheapest to start first. ``gn`` goes without ``cl``: CUDA's group norm makes its input NCHW."""
COMPILED = ["fp16+cl+compile-ro", "fp16+cl+compile", "fp16+cl+compile-ro+pad8", "bf16+cl+compile-ro",
            "fp16+compile-ro"]
SETUP_S = {"eager": 10, "cnorm": 40, "compile-ro": 60, "compile": 150}
"""Time left needed to start a path (warm-up included): compiling takes from seconds (the norm
alone) to minutes (the whole network with max-autotune's kernel search). Guesses, to be
replaced by the ``setup s`` column of a GPU run."""
PROFILE_S = 30
"""Time left needed to profile the path ``apply`` runs now and the first run's fastest path, once."""
FIDELITY_DB = 40.0
"""PSNR against eager fp32 a path needs to be chosen: the speed engine's bar (tests/test_speed_paths.py)."""


def setup_cost(spec: str) -> int:
    parts = spec.split("+")
    return max(SETUP_S.get(part, SETUP_S["eager"]) for part in parts)


class Bench:
    """The timing loop on one device, with a deadline; rows accumulate in :attr:`rows`."""

    def __init__(self, device: str, reps: int, warmup: int, deadline: float, compiling: bool = True) -> None:
        import torch

        self.torch, self.device, self.reps, self.warmup, self.deadline = torch, torch.device(device), reps, warmup, deadline
        self.compiling = compiling
        self.rows: list[dict] = []

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def sync(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def timed(self, call) -> float:
        self.sync()
        start = time.perf_counter()
        call()
        self.sync()
        return time.perf_counter() - start

    def run(self, model: str, size: int, batch: int, specs: list[str]) -> None:
        """Time ``specs`` against the baseline on ``model`` at ``size`` px, ``batch`` images a call."""
        torch = self.torch
        from benchmarks.baseline import TransformerNet
        from stylize import Stylizer
        from stylize.model import checkpoint
        from stylize.runtime.process import EngineOptions
        from stylize.runtime.variants import resolve_fast_path

        torch.manual_seed(0)
        ckpt = checkpoint.load(ROOT / "weights" / f"{model}.safetensors", map_location=self.device)
        n_styles = len(ckpt.styles)
        x = torch.rand(batch, 3, size, size, device=self.device)
        weights = torch.nn.functional.one_hot(torch.arange(batch) * 5 % n_styles, n_styles).float().to(self.device)
        base_net = TransformerNet().to(self.device).eval()
        common = {"model": model, "size": size, "batch": batch, "mpix": batch * size * size / 1e6}

        def baseline():
            with torch.inference_mode():
                base_net(x)

        reference = Stylizer(ckpt.net, ckpt.styles, device=self.device, precision="fp32",
                             engine=EngineOptions(fast_path="fp32"))._forward(x, weights)
        paths: list[tuple[str, object, dict]] = []
        skipped: list[dict] = []
        for spec in specs:
            row = {**common, "path": spec}
            try:
                resolve_fast_path(spec, self.device.type)
            except Exception as exc:  # noqa: BLE001 - a path this device cannot run is a row, not a failure
                skipped.append({**row, "skipped": str(exc).split(": ", 1)[-1]})
                continue
            if not self.compiling and setup_cost(spec) > SETUP_S["eager"]:
                skipped.append({**row, "skipped": "nothing is compiled in a dry run"})
                continue
            if self.left() < setup_cost(spec):
                skipped.append({**row, "skipped": f"no time left ({self.left():.0f} s < {setup_cost(spec)} s)"})
                continue
            try:
                start = time.perf_counter()
                stylizer = Stylizer(ckpt.net, ckpt.styles, device=self.device, engine=EngineOptions(fast_path=spec))
                call = lambda s=stylizer: s._forward(x, weights)
                for _ in range(self.warmup):
                    out = call()
                self.sync()
                row["setup_s"] = round(time.perf_counter() - start, 2)
                row |= fidelity(out, reference)
                paths.append((spec, call, row))
            except Exception as exc:  # noqa: BLE001 - one path failing must not lose the others
                skipped.append({**row, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"})
            finally:
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
        if not paths:
            self.rows += skipped
            return
        for _ in range(self.warmup):
            baseline()
        base_times: list[float] = []
        times: dict[str, list[float]] = {spec: [] for spec, _, _ in paths}
        for round_ in range(self.reps):
            if round_ >= 3 and self.left() < 0:
                break
            base_times.append(self.timed(baseline))
            for spec, call, _ in paths:
                times[spec].append(self.timed(call))
        base_rate = common["mpix"] / statistics.median(base_times)
        self.rows.append({**common, "path": "baseline (TransformerNet, eager fp32)", "mpix_per_s": base_rate,
                          "ratio": 1.0, "rounds": len(base_times)})
        for spec, _, row in paths:
            ratios = [b / t for b, t in zip(base_times, times[spec])]
            row |= {"mpix_per_s": common["mpix"] / statistics.median(times[spec]),
                    "ratio": statistics.median(ratios), "rounds": len(ratios)}
            self.rows.append(row)
        self.rows += skipped


    def profile(self, model: str, size: int, batch: int, specs: list[str], out: Path) -> list[Path]:
        """Where the time of each of ``specs`` goes: ``torch.profiler``'s operators and kernels over three
        calls, most self time first, in ``OUT/profile-<model>-<size>-b<batch>-<spec>.txt``."""
        torch = self.torch
        from torch.profiler import ProfilerActivity, profile

        from stylize import Stylizer
        from stylize.model import checkpoint
        from stylize.runtime.process import EngineOptions

        ckpt = checkpoint.load(ROOT / "weights" / f"{model}.safetensors", map_location=self.device)
        x = torch.rand(batch, 3, size, size, device=self.device)
        weights = torch.full((batch, len(ckpt.styles)), 1 / len(ckpt.styles), device=self.device)
        cuda = self.device.type == "cuda"
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        written = []
        for spec in specs:
            stylizer = Stylizer(ckpt.net, ckpt.styles, device=self.device, engine=EngineOptions(fast_path=spec))
            for _ in range(self.warmup):
                stylizer._forward(x, weights)
            self.sync()
            with profile(activities=activities) as prof:
                for _ in range(3):
                    stylizer._forward(x, weights)
                self.sync()
            table = prof.key_averages().table(sort_by="self_device_time_total" if cuda else "self_cpu_time_total",
                                              row_limit=40, max_name_column_width=70)
            path = out / f"profile-{model}-{size}-b{batch}-{spec}.txt"
            path.write_text(f"{spec}, {model}, {size} px, batch {batch}, 3 calls after {self.warmup} warm-up\n{table}\n")
            written.append(path)
        return written


def fidelity(out, reference) -> dict:
    """How far a path's output is from eager fp32's: PSNR, and the largest change in 8-bit levels."""
    diff = (out.float() - reference.float())
    mse = diff.pow(2).mean().item()
    levels = ((out.float() * 255).round() - (reference.float() * 255).round()).abs().max().item()
    return {"psnr_db": 99.0 if mse == 0 else round(-10 * math.log10(mse), 1), "max_levels": int(levels),
            "finite": bool(out.isfinite().all())}


def winners(rows: list[dict]) -> list[dict]:
    """For each model, size and batch, the fastest timed path that passes :data:`FIDELITY_DB`."""
    best: dict[tuple, dict] = {}
    for row in rows:
        if "ratio" not in row or row["path"].startswith("baseline") or row.get("psnr_db", 0) < FIDELITY_DB:
            continue
        key = (row["model"], row["size"], row["batch"])
        if key not in best or row["ratio"] > best[key]["ratio"]:
            best[key] = row
    return list(best.values())


def label(path: str) -> str:
    """The path's spec, marked where it is what ``apply`` runs on CUDA now."""
    from stylize.config import CUDA_FAST_PATH

    return f"{path} (apply now)" if path == CUDA_FAST_PATH else path


def table(rows: list[dict], header: str) -> str:
    lines = [header, "", "| model | size | batch | path | Mpix/s | x baseline | PSNR vs fp32 dB | max levels | setup s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "ratio" in r:
            lines.append(f"| {r['model']} | {r['size']} | {r['batch']} | {label(r['path'])} | {r['mpix_per_s']:.3g} | "
                         f"x{r['ratio']:.2f} | {r.get('psnr_db', '-')} | {r.get('max_levels', '-')} | "
                         f"{r.get('setup_s', '-')} |")
        else:
            lines.append(f"| {r['model']} | {r['size']} | {r['batch']} | {label(r['path'])} | "
                         f"{'failed: ' + r['error'] if 'error' in r else 'skipped: ' + r['skipped']} | | | | |")
    lines += ["", f"Fastest path at or above {FIDELITY_DB:.0f} dB (the value for stylize.config.CUDA_FAST_PATH):", ""]
    lines += [f"- {w['model']} {w['size']} px batch {w['batch']}: `{w['path']}` x{w['ratio']:.2f}" for w in winners(rows)]
    return "\n".join(lines) + "\n"


def write(out: Path, rows: list[dict], header: str) -> None:
    for name, text in (("variants.json", json.dumps({"header": header, "rows": rows, "winners": winners(rows)},
                                                    indent=2)), ("variants.md", table(rows, header))):
        part = out / f".{name}.part"
        part.write_text(text)
        part.replace(out / name)


def jobs(models: list[str], sizes: list[int], batches: list[int], eager: list[str],
         compiled: list[str]) -> list[tuple[str, int, int, list[str]]]:
    """What to time, most wanted first: each model's eager paths, then its compiled ones at the first
    size and batch (the target: 1024 px, batch 1), then the compiled ones elsewhere."""
    first, rest = [], []
    for model in models:
        first += [(model, size, batch, eager) for size in sizes for batch in batches]
        configs = [(model, size, batch, compiled) for size in sizes for batch in batches] if compiled else []
        first += configs[:1]
        rest += configs[1:]
    return first + rest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder for variants.json and variants.md (created)")
    parser.add_argument("--dry-run", action="store_true",
                        help="CPU, 64 px, batches 1 and 2, two rounds; compiled paths listed as skipped")
    parser.add_argument("--budget-s", type=float, default=240, help="stop starting paths and rounds after this")
    parser.add_argument("--models", default="stylize-22,stylize-22-small")
    parser.add_argument("--sizes", default="1024")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--paths", help="comma-separated specs (default: every eager path, then the compiled)")
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import torch

    from stylize.config import CUDA_FAST_PATH

    deadline = time.monotonic() + args.budget_s
    device, sizes, batches, reps, warmup = "cuda", args.sizes, args.batches, args.reps, 3
    eager, compiled = (args.paths.split(","), []) if args.paths else (EAGER, COMPILED)
    if args.dry_run:
        device, sizes, batches, reps, warmup = "cpu", "64", "1,2", 2, 1
    elif not torch.cuda.is_available():
        print("error: no CUDA GPU here; use --dry-run to check the call on the CPU", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    where = torch.cuda.get_device_name(0) if device == "cuda" else "CPU (dry run)"
    header = (f"# Fast paths, {time.strftime('%Y-%m-%d', time.gmtime())}, {where}, torch {torch.__version__}\n\n"
              f"Rates in Mpix/s (median of up to {reps} interleaved rounds); x baseline: median per-round ratio to "
              "the eager fp32 TransformerNet (benchmarks/baseline.py); fidelity against stylize's eager fp32 path.")
    bench = Bench(device, reps, warmup, deadline, compiling=not args.dry_run)
    profiled = False

    for model, size, batch, specs in jobs(args.models.split(","), [int(s) for s in sizes.split(",")],
                                          [int(b) for b in batches.split(",")], eager, compiled):
        start = len(bench.rows)
        bench.run(model, size, batch, specs)
        write(args.out, bench.rows, header)
        if not profiled and bench.left() > PROFILE_S:
            profiled = True
            best = [w["path"] for w in winners(bench.rows[start:])]
            try:
                bench.profile(model, size, batch, sorted({CUDA_FAST_PATH, *best}), args.out)
            except Exception as exc:  # noqa: BLE001 - a profiler that fails costs its files only
                print(f"profile failed: {type(exc).__name__}: {exc}", flush=True)
        for row in bench.rows[start:]:
            figure = (f"{row['mpix_per_s']:.3g} Mpix/s x{row['ratio']:.2f}" + (
                f", {row['psnr_db']} dB" if "psnr_db" in row else "") if "ratio" in row
                      else row.get("error") or f"skipped: {row['skipped']}")
            print(f"{model} {size} px b{batch} {row['path']}: {figure}", flush=True)
    for w in winners(bench.rows):
        print(f"fastest at >= {FIDELITY_DB:.0f} dB, {w['model']} {w['size']} px b{w['batch']}: {w['path']} "
              f"x{w['ratio']:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
