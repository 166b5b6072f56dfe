"""`stylize apply` under torchrun: files split across ranks, each written once, one merged summary."""

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import make_photo
from stylize.runtime.distributed import gather, shard, world

ROOT = Path(__file__).resolve().parent.parent


def test_shard_is_a_deterministic_partition():
    items = [f"dir/{name}.jpg" for name in "qwertyuiopasdfg"]
    parts = [shard(items, rank, 4) for rank in range(4)]
    assert sorted(x for part in parts for x in part) == sorted(items)
    assert parts == [shard(list(reversed(items)), rank, 4) for rank in range(4)]  # independent of listing order
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert shard(items, 0, 1) == items


def test_outside_torchrun_there_is_one_rank(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert world() == (0, 1) and gather({"a": 1}) == [{"a": 1}]


def test_two_ranks_write_every_output_exactly_once(tiny_model, tmp_path):
    photos = tmp_path / "photos"
    for i in range(7):
        make_photo(photos / f"sub{i % 2}" / f"p{i}.png", (40, 32), seed=i)
    (photos / "sub1" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "stylize", "apply", str(photos), "-o", str(out), "--style", "wave", "-m", str(tiny_model),
         "--device", "cpu", "--json"],
        capture_output=True, text=True, env=env, timeout=300)
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert sorted(r["input"] for r in records) == sorted(str(p) for p in photos.rglob("*.*"))  # each input once
    assert sorted(r["status"] for r in records) == ["failed"] + ["ok"] * 7
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == sorted(f"sub{i % 2}/p{i}.png" for i in range(7))
    assert done.stderr.count("7 written, 0 skipped (already there), 1 failed") == 1  # rank 0 only, all ranks
    assert f"error: {photos / 'sub1' / 'broken.jpg'}: " in done.stderr
    assert done.returncode != 0


def test_two_ranks_learn_a_style_image_together(tiny_model, tmp_path):
    """``--style-image`` under torchrun: the ranks learn the style together (DDP), so the CPU
    recipe's batch of one photo is rounded up to one a rank; every photo is written once."""
    photos = tmp_path / "photos"
    for i in range(3):
        make_photo(photos / f"p{i}.png", (48, 40), seed=i)
    painting = make_photo(tmp_path / "painting.png", (64, 48), seed=9)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "stylize", "apply", str(photos), "-o", str(out), "--style-image", str(painting), "-m", str(tiny_model),
         "--style-steps", "2", "--device", "cpu", "-q"],
        capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == [f"p{i}.png" for i in range(3)]
