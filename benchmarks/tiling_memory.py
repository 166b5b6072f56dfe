"""Peak memory and time of ``stylize apply``'s tiled rendering of one large photo on the CPU.

    python -m benchmarks.tiling_memory --sizes 4096,8192 --tile-sizes 1024,2048,0

Each (size, tile size) runs in a fresh process (so peaks do not mix) through
:meth:`stylize.Stylizer.stylize`, the code behind ``stylize apply`` (set up as the CLI does), on a random
photo with a random-weight network of the chosen preset (memory and time do not
depend on the weights). Tile size 0 means untiled. Reported: the process's peak
resident set (VmHWM, includes Python + torch, ~0.3 GB), how much of that the photo
buffers alone take (input, output and the strength blend, 3 x 12 bytes per pixel), and
the wall time. A run that would need more memory than is available is skipped unless
``--force``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _status(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def child(size: int, tile: int, preset: str, threads: int | None) -> dict:
    import dataclasses

    import torch

    if threads:
        torch.set_num_threads(threads)
    from stylize.runtime.process import own_process
    from stylize.config import ApplySettings
    from stylize.apply.torch_backend import Stylizer
    from stylize.config import PRESETS
    from stylize.model.network import StyleNet

    torch.manual_seed(0)
    net = StyleNet(dataclasses.replace(PRESETS[preset], n_styles=1)).eval()
    stylizer = Stylizer(net, ["random"], device="cpu", precision="fp32", engine=own_process())
    photo = torch.rand(3, size, size)
    before = _status("VmRSS")
    start = time.perf_counter()
    out = stylizer.stylize(photo, stylizer.choose("random")[0], ApplySettings(tile_size=tile, work_size=0))
    seconds = time.perf_counter() - start
    assert out.shape == photo.shape
    return {"size": size, "tile_size": tile, "preset": preset, "seconds": seconds, "peak_rss": _status("VmHWM"),
            "rss_before": before, "photo_buffers": 3 * 12 * size * size, "threads": torch.get_num_threads()}


def available() -> int:
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="4096,8192")
    parser.add_argument("--tile-sizes", default="1024,2048", help="comma-separated; 0 = untiled")
    parser.add_argument("--preset", default="johnson")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        size, tile = (int(v) for v in args.child.split(","))
        print(json.dumps(child(size, tile, args.preset, args.threads)))
        return 0
    results = []
    print(f"tiled CPU rendering, preset {args.preset}: peak RSS of a fresh process per run")
    print(f"{'size':>6} {'tile':>6} | {'peak RSS':>9} {'photo buffers':>14} {'time':>8}")
    for size in (int(s) for s in args.sizes.split(",")):
        for tile in (int(t) for t in args.tile_sizes.split(",")):
            # untiled needs ~1.1 kB per pixel of activations (fp32, fast path), tiled ~ that per tile pixel
            side = size if tile == 0 or tile >= size else tile
            need = 1100 * side * side + 3 * 12 * size * size + 400 * 2**20
            if need > 0.9 * available() and not args.force:
                print(f"{size:>6} {tile:>6} | skipped: needs ~{need / 2**30:.1f} GiB, "
                      f"{available() / 2**30:.1f} GiB available (--force to try)")
                continue
            cmd = [sys.executable, "-m", "benchmarks.tiling_memory", "--child", f"{size},{tile}",
                   "--preset", args.preset] + (["--threads", str(args.threads)] if args.threads else [])
            env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                print(f"{size:>6} {tile:>6} | failed: {proc.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            results.append(r)
            print(f"{size:>6} {tile or 'none':>6} | {r['peak_rss'] / 2**30:7.2f} GiB {r['photo_buffers'] / 2**30:10.2f} GiB "
                  f"{r['seconds']:7.1f} s", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
