"""Everything a GPU session should record, in one command of a few minutes.

    python -m benchmarks.gpu_check results/gpu-check            # on a CUDA machine (minutes: --budget-s)
    python -m benchmarks.gpu_check /tmp/gpu-check --dry-run     # same steps, toy sizes, on the CPU (CI)

GPU time is scarce here (a few minutes, now and then), so this is prepared to run
unattended and to leave files behind whatever fails. Steps, each written to
``OUT/<step>.json`` (and ``.txt`` for command output), each allowed to fail alone:

1. ``environment``: torch, CUDA, cuDNN, the GPU, its capability, bf16 support, memory.
2. ``variants``: :mod:`benchmarks.gpu_variants`, every fast path of ``apply`` against the eager fp32
   baseline at 1024 px, batch 1 and 8, within ``--budget-s`` less 30 s (its table:
   ``OUT/variants/variants.md``, with the fastest path that keeps to the fidelity bar).
3. ``tests``: the tests that run only on CUDA (skipped on a CPU), verbose (``--no-tests``: not again).
4. ``speed``: ``benchmarks.speed`` at 1024 px, batch 1 (baseline, stylize, the code before
   the speed work, ``torch.compile(mode="reduce-overhead")``) and a training step at
   256 px, each as a ratio to the classic network in the same run.
5. ``apply``: ``stylize apply`` over a folder of 1024 px JPEGs made here (end-to-end
   images/s from the command's own JSON lines and wall time), then the same photos
   stage by stage (decode, network, encode; seconds per image) to show where the time goes.
6. ``style_image``: ``--style-image`` on a synthetic painting: learning time with the
   device's defaults, then the cache hit, then one render.
7. ``memory``: peak memory of one 1024 px pass against :mod:`stylize.apply.memory`'s estimate,
   and the tile the free memory gives.

A summary goes to stdout and ``OUT/summary.md``; the exit code is 1 if any step failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Sizes:
    """How big each step is: a GPU run, or a dry run that only proves the steps work."""

    device: str
    photo_px: int
    photos: int
    speed_args: tuple[str, ...]
    style_overrides: dict
    timeout_s: int
    """Limit of each command: on a GPU, what keeps the whole check under 9 minutes; a dry run only
    has to finish, on a CI machine that may be busy."""


FULL = Sizes(device="cuda", photo_px=1024, photos=48,
             speed_args=("--sizes", "1024", "--batches", "1", "--reference", "--compile"),
             style_overrides={}, timeout_s=240)
DRY = Sizes(device="cpu", photo_px=64, photos=3,
            speed_args=("--sizes", "64", "--batches", "1", "--reps", "1", "--warmup", "0", "--train-size", "32",
                        "--train-batch", "1"),
            style_overrides=dict(steps=2, image_size=32, batch_size=1, style_size=48), timeout_s=1200)

CUDA_TESTS = ["tests/test_cuda.py", "tests/test_speed_paths.py", "tests/test_fast_paths.py", "-k", "cuda"]
"""The tests that need a GPU (each file skips them without one)."""


class Check:
    """Runs the steps, writes their results under ``out``, remembers the summary lines."""

    def __init__(self, out: Path, sizes: Sizes) -> None:
        self.out, self.sizes = out, sizes
        self.lines: list[str] = []
        self.failed: list[str] = []
        self.env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}

    def step(self, name: str, run: Callable[[], dict]) -> None:
        start = time.perf_counter()
        try:
            result = run()
            status = "ok" if not result.get("failed") else "failed"
        except Exception as exc:  # noqa: BLE001 - one step failing must not lose the others
            result, status = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}, "failed"
        result = {"status": status, "seconds": round(time.perf_counter() - start, 1), **result}
        (self.out / f"{name}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
        if status == "failed":
            self.failed.append(name)
        line = f"{name}: {status} in {result['seconds']} s" + (f" - {result['summary']}" if "summary" in result
                                                                   else "")
        if "error" in result:
            line += f" - {result['error'].splitlines()[0][:200]}"
        self.lines.append(line)
        print(line, flush=True)

    def command(self, name: str, argv: list[str], timeout: int | None = None, **kwargs) -> dict:
        """Run ``argv`` (output to ``OUT/name.txt``); the result carries its exit code and wall time."""
        start = time.perf_counter()
        try:
            done = subprocess.run(argv, cwd=ROOT, env=self.env, capture_output=True, text=True,
                                  timeout=timeout or self.sizes.timeout_s, **kwargs)
            code, output = done.returncode, done.stdout + done.stderr
        except subprocess.TimeoutExpired as exc:
            parts = [p.decode(errors="replace") if isinstance(p, bytes) else p for p in (exc.stdout, exc.stderr) if p]
            code, output = "timeout", "".join(parts) + f"\n[timed out after {exc.timeout} s]"
        (self.out / f"{name}.txt").write_text(f"$ {' '.join(argv)}\n{output}")
        return {"command": argv, "exit_code": code, "wall_s": round(time.perf_counter() - start, 2),
                "output_tail": output[-3000:], "failed": code != 0, "stdout": output}


# --------------------------------------------------------------------------- steps


def environment(sizes: Sizes) -> dict:
    import torch

    info = {"torch": torch.__version__, "python": platform.python_version(), "device": sizes.device,
            "cuda_available": torch.cuda.is_available()}
    if sizes.device == "cuda":
        props = torch.cuda.get_device_properties(0)
        free, total = torch.cuda.mem_get_info(0)
        info |= {"gpu": props.name, "capability": list(torch.cuda.get_device_capability(0)),
                 "gpus": torch.cuda.device_count(), "cuda": torch.version.cuda,
                 "cudnn": torch.backends.cudnn.version(), "bf16_supported": torch.cuda.is_bf16_supported(),
                 "memory_total_gib": round(total / 2**30, 1), "memory_free_gib": round(free / 2**30, 1)}
        info["summary"] = f"{props.name}, CUDA {torch.version.cuda}, {info['memory_total_gib']} GiB"
    else:
        info["summary"] = f"CPU ({platform.machine()}), torch {torch.__version__}"
    return info


def variants(check: Check, budget_s: float) -> dict:
    folder = check.out / "variants"
    argv = [sys.executable, "-m", "benchmarks.gpu_variants", str(folder), "--budget-s", str(round(budget_s))]
    result = check.command("variants", argv + (["--dry-run"] if check.sizes.device == "cpu" else []),
                           timeout=max(check.sizes.timeout_s, round(budget_s) + 120))
    report = folder / "variants.json"
    if report.exists():
        data = json.loads(report.read_text())
        timed = [row for row in data["rows"] if "ratio" in row and not row["path"].startswith("baseline")]
        best = [f"{w['model']} {w['size']} px b{w['batch']}: {w['path']} x{w['ratio']:.2f}" for w in data["winners"]]
        result["summary"] = f"{len(timed)} paths timed; fastest within the bar: " + ("; ".join(best) or "none")
    return _lean(result)


def cuda_tests(check: Check) -> dict:
    result = check.command("tests", [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                                     *CUDA_TESTS])
    counts = result["stdout"].strip().splitlines()[-1] if result["stdout"].strip() else "no output"
    result["failed"] = result["exit_code"] not in (0, 5)  # 5: nothing collected
    result["summary"] = counts
    return _lean(result)


def speed(check: Check) -> dict:
    report = check.out / "speed-report.json"
    result = check.command("speed", [sys.executable, "-m", "benchmarks.speed", "--device", check.sizes.device,
                                     *check.sizes.speed_args, "--json", str(report)],
                           timeout=max(300, check.sizes.timeout_s))  # torch.compile takes a minute or so
    if report.exists():
        data = json.loads(report.read_text())
        result["report"] = data
        figures = []
        for kind in ("inference", "training"):
            for entry in data.get(kind, []):
                for name, cell in entry.items():
                    if isinstance(cell, dict) and cell.get("ratio_vs_baseline") is not None:
                        figures.append(f"{kind} {entry['size']} px batch {entry['batch']}: {name} "
                                       f"x{cell['ratio_vs_baseline']:.2f}")
                    elif isinstance(cell, dict) and cell.get("error"):
                        figures.append(f"{kind} {entry['size']} px: {name} failed")
        result["summary"] = "; ".join(figures) or "no ratios (see speed.txt)"
    return _lean(result)


def make_photos(folder: Path, count: int, size: int) -> list[Path]:
    """``count`` seeded ``size``-px JPEGs with photo-like content (smooth gradients, edges, grain)."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(count):
        rng = np.random.default_rng(i)
        phase = rng.uniform(0, 6, 3)
        img = np.stack([np.sin((4 + c) * xx + (3 - c) * yy + phase[c]) * 0.4 + 0.5 for c in range(3)], -1)
        for _ in range(6):  # a few flat objects with hard edges
            y0, x0 = rng.integers(0, size * 3 // 4, 2)
            h, w = rng.integers(size // 10, size // 4, 2)
            img[y0:y0 + h, x0:x0 + w] = rng.uniform(0, 1, 3)
        img = np.clip(img + rng.normal(0, 0.03, img.shape), 0, 1)
        path = folder / f"photo_{i:03d}.jpg"
        Image.fromarray((img * 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def batch_apply(check: Check) -> dict:
    sizes = check.sizes
    photos = make_photos(check.out / "apply-photos", sizes.photos, sizes.photo_px)
    styled = check.out / "apply-styled"
    shutil.rmtree(styled, ignore_errors=True)
    # --work-size 0: every photo painted whole, at photo_px as in the figures so far, whatever
    # the style's own work size (starry_night's 512 would paint a quarter of the pixels).
    run = check.command("apply", [sys.executable, "-m", "stylize", "apply", str(photos[0].parent), "-o", str(styled),
                                  "--style", "starry", "--device", sizes.device, "--json", "--work-size", "0"])
    records = [json.loads(line) for line in run["stdout"].splitlines() if line.startswith("{")]
    ok = [r for r in records if r["status"] == "ok"]
    result = {"apply_exit_code": run["exit_code"], "wall_s": run["wall_s"], "written": len(ok),
              "images_per_s_wall": round(len(ok) / run["wall_s"], 2) if run["wall_s"] else None,
              "failed": run["exit_code"] != 0 or len(ok) != len(photos), "output_tail": run["output_tail"]}
    result["stages"] = _stage_times(photos, sizes.device)
    stages = result["stages"]
    network_bound = stages["network_s"] >= max(stages["decode_s"], stages["encode_s"])
    result["limited_by"] = "the network" if network_bound else "decoding/encoding"
    result["summary"] = (f"{len(ok)} photos of {sizes.photo_px} px: {result['images_per_s_wall']} images/s end to end "
                         f"(process start and model load included); per image: decode {stages['decode_s']:.4f} s, "
                         f"network {stages['network_s']:.4f} s, encode {stages['encode_s']:.4f} s; "
                         f"limited by {result['limited_by']}")
    return result


def _stage_times(photos: list[Path], device: str) -> dict:
    """Median seconds per image of each stage, run one after another (no overlap)."""
    import statistics
    import tempfile

    import torch

    from stylize import Stylizer
    from stylize.config import ApplySettings
    from stylize.io.images import read_image
    from stylize.io.encode import write_image

    stylizer = Stylizer.load(device=device)
    choice = stylizer.choose("starry")[0]
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    stylizer.stylize_photo(read_image(photos[0]), choice, ApplySettings(work_size=0))  # warm-up: cuDNN autotuning, allocator
    decode, network, encode = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for path in photos:
            tick = time.perf_counter()
            photo = read_image(path)
            decode.append(time.perf_counter() - tick)
            sync()
            tick = time.perf_counter()
            styled = stylizer.stylize_photo(photo, choice, ApplySettings(work_size=0))
            sync()
            network.append(time.perf_counter() - tick)
            tick = time.perf_counter()
            write_image(Path(tmp) / path.name, styled.rgb, quality=95)
            encode.append(time.perf_counter() - tick)
    return {"decode_s": statistics.median(decode), "network_s": statistics.median(network),
            "encode_s": statistics.median(encode), "photos": len(photos),
            "note": "network_s includes the host-device copies and the strength blend on the CPU"}


def style_image(check: Check) -> dict:
    from benchmarks.synthetic_painting import synthetic_painting
    from stylize import Stylizer
    from stylize.model import checkpoint
    from stylize.train.finetune import Overrides, learn_style
    from stylize.train.vgg import CACHE_FILENAME, load_vgg
    from stylize.io.weights import cache_dir, default_model

    sizes = check.sizes
    painting = check.out / "swirls.png"
    synthetic_painting(size=512, seed=0).save(painting)
    photos = sorted((check.out / "apply-photos").glob("*.jpg"))[:4] or make_photos(check.out / "style-photos", 2,
                                                                                   sizes.photo_px)
    model = checkpoint.load(default_model())
    load_vgg()  # converted once into the usual cache, then copied into a fresh one where no style is cached
    fresh = check.out / "cache"
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir()
    shutil.copy(cache_dir() / CACHE_FILENAME, fresh / CACHE_FILENAME)
    os.environ["STYLIZE_CACHE_DIR"] = str(fresh)
    overrides = Overrides(**sizes.style_overrides)
    steps = []
    tick = time.perf_counter()
    learned = learn_style(model, painting, photos, overrides=overrides, device=sizes.device, on_step=steps.append)
    learn_s = time.perf_counter() - tick
    tick = time.perf_counter()
    learn_style(model, painting, photos, overrides=overrides, device=sizes.device)
    cached_s = time.perf_counter() - tick
    stylizer = Stylizer(learned.net, learned.styles, device=sizes.device)
    from stylize.io.images import read_image

    photo = read_image(photos[0])
    tick = time.perf_counter()
    stylizer.stylize_photo(photo, stylizer.choose(learned.styles[-1])[0])
    render_s = time.perf_counter() - tick
    rate = steps[-1].images_per_s if steps else None
    return {"steps": len(steps), "learn_s": round(learn_s, 2), "cache_hit_s": round(cached_s, 3),
            "first_render_s": round(render_s, 3), "crops_per_s_last_step": rate,
            "summary": f"learned in {learn_s:.1f} s ({len(steps)} steps), cache hit {cached_s:.2f} s, "
                       f"render {render_s:.2f} s"}


def memory_use(check: Check) -> dict:
    if check.sizes.device != "cuda":
        return {"summary": "skipped: CUDA only"}
    import torch

    from stylize import Stylizer
    from stylize.config import ApplySettings
    from stylize.apply.memory import auto_tile, pass_bytes_per_pixel

    stylizer = Stylizer.load(device="cuda")
    side = 1024
    rgb = torch.rand(3, side, side)
    choice = stylizer.choose("starry")[0]
    stylizer.stylize(rgb, choice, ApplySettings(tile_size=0, work_size=0))  # warm-up
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    stylizer.stylize(rgb, choice, ApplySettings(tile_size=0, work_size=0))
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    estimate = pass_bytes_per_pixel(stylizer.net.config, 2) * side * side
    tile = auto_tile(torch.device("cuda"), stylizer.net.config, 2)
    return {"peak_bytes_1024": peak, "estimate_bytes_1024": estimate, "measured_over_estimate": peak / estimate,
            "auto_tile_px": tile,
            "summary": f"1024 px pass peak {peak / 2**20:.0f} MiB, estimate {estimate / 2**20:.0f} MiB "
                       f"(x{peak / estimate:.2f}); auto tile {tile} px"}


def _lean(result: dict) -> dict:
    result.pop("stdout", None)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder for the result files (created; files in it are replaced)")
    parser.add_argument("--dry-run", action="store_true", help="toy sizes on the CPU: checks that every step works")
    parser.add_argument("--budget-s", type=float, default=540,
                        help="seconds the whole check may take; the variants step gets this less 30 s "
                             "(at most 300 s), the later steps what is left")
    parser.add_argument("--no-tests", action="store_true", help="skip the CUDA tests (the caller ran them)")
    args = parser.parse_args(argv)
    sizes = DRY if args.dry_run else FULL
    sys.path.insert(0, str(ROOT))
    import torch

    if sizes.device == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA GPU here; use --dry-run to check the steps on the CPU", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    check = Check(args.out, sizes)
    print(f"gpu_check{' (dry run)' if args.dry_run else ''}: results in {args.out}", flush=True)
    check.step("environment", lambda: environment(sizes))
    check.step("variants", lambda: variants(check, max(30.0, min(300.0, args.budget_s - 30))))
    if not args.no_tests:
        check.step("tests", lambda: cuda_tests(check))
    check.step("speed", lambda: speed(check))
    check.step("apply", lambda: batch_apply(check))
    check.step("style_image", lambda: style_image(check))
    check.step("memory", lambda: memory_use(check))
    summary = "\n".join(f"- {line}" for line in check.lines)
    (args.out / "summary.md").write_text(f"# gpu_check{' (dry run)' if args.dry_run else ''}\n\n{summary}\n")
    if check.failed:
        print(f"failed: {', '.join(check.failed)} (details in {args.out}/<step>.json and .txt)", flush=True)
    return 1 if check.failed else 0


if __name__ == "__main__":
    sys.exit(main())
