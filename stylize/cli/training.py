"""``stylize train`` and ``stylize add-style``: training loops behind a progress bar."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from ..config import ADD_STEPS, STYLE_LR, DistillSettings, LossWeights, TrainSettings
from ..runtime.extras import require
from ..runtime.process import own_process
from .common import (LR_MAX, WORKERS_HELP, DeviceOption, EditedModel, Precision, Quiet, Verbose, chosen_model, echo,
                     fail, given, is_main_process, model_and_rest, parse_numbers, pick_device, user_errors, verbosity)
from .progress import StepBar, Verbosity

TRAIN, LOSS, DISTILL = TrainSettings(), LossWeights(), DistillSettings()
"""The defaults every option of training shows and starts from (:mod:`stylize.config` holds them)."""

if TYPE_CHECKING:
    from ..train.loop import TrainResult


def run_training_loop(run: Callable[[StepBar], TrainResult], say: Verbosity, desc: str) -> None:
    """Run a training loop (``train``, ``add-style``) behind a progress bar; say where it saved.

    ``run`` gets the ``on_step`` callback. Ctrl-C saves and exits 130 with how to resume.
    """
    bar = StepBar(say, desc, main=is_main_process())
    with user_errors():
        try:
            result = run(bar)
        finally:
            bar.close()  # before any error line, which would otherwise share the bar's line
    if result.interrupted:  # every torchrun rank stops at the same step and exits 130; rank 0 says so
        if is_main_process():
            echo(f"interrupted at step {result.step}; saved {result.checkpoint}; continue with --resume")
        raise typer.Exit(130)
    if is_main_process() and result.out_of_time:
        say.say(f"time limit reached at step {result.step}; saved {result.checkpoint}; continue with --resume")
    elif is_main_process():
        say.say(f"saved {result.checkpoint} (step {result.step})")


def train(
    ctx: typer.Context,
    style_dir: Path = typer.Argument(..., help="Folder of paintings; each file becomes a style named by its stem."),
    content: Path = typer.Option(..., "--content", "-c", help="Folder of photos to train on (searched recursively)."),
    output: Path = typer.Option(Path("model.safetensors"), "--output", "-o",
                                help="Checkpoint to write; its .log.jsonl and .previews/ go beside it."),
    steps: int = typer.Option(TRAIN.steps, min=1, help="Total optimizer steps (with --resume: the new total)."),
    batch_size: int = typer.Option(TRAIN.batch_size, min=1, help="Photos per step (split across torchrun processes)."),
    image_size: int = typer.Option(TRAIN.image_size, min=32, help="Side of the square photo crops."),
    style_size: int = typer.Option(TRAIN.style_size, min=32, help="Long side the paintings are resized to."),
    lr: float = typer.Option(TRAIN.lr, min=0.0, max=LR_MAX,
                             help=f"Adam learning rate, cosine-decayed to {TRAIN.final_lr_fraction:.0%} over the run "
                                  "(with --resume: a new one)."),
    content_weight: float = typer.Option(LOSS.content, min=0.0, help="Weight of the content loss (at --content-layer)."),
    style_weight: float = typer.Option(LOSS.style, min=0.0, help="Weight of the Gram style loss; higher paints more."),
    tv_weight: float = typer.Option(LOSS.tv, min=0.0, help="Weight of the total-variation smoother."),
    teacher: Optional[Path] = typer.Option(
        None, help="A model with the same styles whose renderings to stay near (--teacher-weight): for a student "
                   "fine-tuned under the perceptual loss, e.g. weights/stylize-22.safetensors."),
    teacher_weight: float = typer.Option(LOSS.teacher, min=0.0, help="Weight of L1 against --teacher's rendering "
                                                                     "of the same crop in the same style."),
    lattice_weight: float = typer.Option(LOSS.lattice, min=0.0, help="Weight of a penalty on patterns that repeat every "
                                                                     "4 px, the same in every cell of the network's lattice "
                                                                     "(a grid in flat areas)."),
    preset: str = typer.Option(TRAIN.preset, help="Network: 'johnson' (the paper's), or for CPUs 'small', 'fast' "
                                                   "or 'full8' (see 'stylize distill')."),
    seed: int = typer.Option(TRAIN.seed, help="Seed for the initial weights and the data sequence."),
    checkpoint_every: int = typer.Option(TRAIN.checkpoint_every, min=1, help="Write the checkpoint every N steps."),
    preview_every: int = typer.Option(TRAIN.preview_every, min=1, help="Write a preview grid every N steps."),
    snapshot_every: int = typer.Option(TRAIN.snapshot_every, min=0,
                                       help="Also keep the weights every N steps as a lean model in "
                                            "MODEL.snapshots/ (0: never), to release an earlier state; "
                                            "--resume keeps the run's own unless given."),
    preview: Optional[Path] = typer.Option(None, help="Photo for the preview grids (default: the first content photo)."),
    workers: int = typer.Option(TRAIN.workers, min=0, help=f"{WORKERS_HELP} Processes here."),
    device: DeviceOption = "auto",
    vgg_weights: Optional[Path] = typer.Option(None, help="Use a torchvision-format VGG16 state dict as the loss network."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run saved in --output (its settings; "
                                                        "a new --steps, --lr or --precision)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start over in place of an existing --output."),
    init_from: Optional[Path] = typer.Option(
        None, "--init-from", help="Continue from a released model (e.g. weights/stylize-22.safetensors): its weights "
                                  "and step count, this command's settings, a fresh optimizer warmed up."),
    warmup_steps: int = typer.Option(TRAIN.warmup_steps, min=0, help="Linear learning-rate warm-up over the first N steps of a fresh "
                                                    "optimizer (from scratch or --init-from)."),
    content_layer: str = typer.Option(LOSS.content_layer, help="VGG layer of the content loss: relu1_2, relu2_2, relu3_3 or "
                                                      "relu4_3 (deeper keeps only the layout, frees more texture)."),
    style_layer_weights: str = typer.Option(
        ",".join(f"{w:g}" for w in LOSS.style_layers), help="Weights of the style loss at relu1_2,relu2_2,relu3_3,relu4_3; more on the last two "
                        "paints larger motifs."),
    precision: Precision = typer.Option(
        TRAIN.precision, case_sensitive=False, help="auto (bf16 where the hardware runs it natively: AVX-512 BF16/AMX CPUs, Ampere+ GPUs; fp16 "
                     "on older GPUs; else fp32), fp32, bf16 or fp16."),
    flat_areas: float = typer.Option(
        TRAIN.flat_areas, min=0.0, max=1.0, help="Share of the crops given a flat or clipped region (one colour or "
                                                 "white), so the network learns to paint strokes there, not blotches."),
    time_limit: Optional[float] = typer.Option(
        None, "--time-limit", min=0.0, help="Stop and save after this many minutes (train in chunks: "
                                            "run again with --resume)."),
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Train one network that holds every painting in STYLE_DIR as a named style.

    Examples:

      stylize train paintings/ -c photos/ -o my-styles.safetensors --steps 20000

      stylize train paintings/ -c photos/ -o cpu.safetensors --preset small --image-size 128 --batch-size 4

      stylize train paintings/ -c photos/ -o my-styles.safetensors --steps 40000 --resume

      stylize train paintings/ -c photos/ -o next.safetensors --init-from weights/stylize-22.safetensors --steps 30000 --warmup-steps 200
    """
    with user_errors():
        require("train", "stylize train")
    from ..train.loop import train as run_training

    own_process()
    say = verbosity(quiet, verbose)
    with user_errors():
        torch_device = pick_device(device, say)
        weights = LossWeights(content=content_weight, style=style_weight, tv=tv_weight, teacher=teacher_weight,
                              lattice=lattice_weight,
                              content_layer=content_layer,
                              style_layers=parse_numbers(style_layer_weights, "--style-layer-weights"))
    settings = TrainSettings(
        steps=steps, batch_size=batch_size, image_size=image_size, style_size=style_size, lr=lr,
        warmup_steps=warmup_steps, weights=weights, preset=preset, seed=seed,
        checkpoint_every=checkpoint_every, preview_every=preview_every, snapshot_every=snapshot_every,
        workers=workers, precision=str(precision), flat_areas=flat_areas, teacher=str(teacher or ""),
    )
    resume_lr = lr if resume and given(ctx, "lr") else None
    if resume_lr is not None:
        echo(f"--resume: continuing with the new --lr {lr:g} instead of the run's own")
    resume_precision = str(precision) if resume and given(ctx, "precision") else None
    if resume_precision is not None:
        echo(f"--resume: continuing with the new --precision {resume_precision} instead of the run's own")
    resume_snapshot_every = snapshot_every if resume and given(ctx, "snapshot_every") else None
    run_training_loop(lambda on_step: run_training(style_dir, content, output, settings, device=torch_device,
                                                   vgg_weights=vgg_weights, resume=resume, overwrite=overwrite,
                                                   resume_lr=resume_lr, resume_precision=resume_precision,
                                                   resume_snapshot_every=resume_snapshot_every,
                                                   init_from=init_from,
                                                   preview=preview, on_step=on_step,
                                                   time_limit=time_limit * 60 if time_limit is not None else None),
                      say, "train")


def add_style(
    style_images: list[str] = typer.Argument(..., metavar="STYLE_IMAGE...",
                                             help="Paintings; each becomes a new style named by its file stem."),
    model: EditedModel = None,
    output: Path = typer.Option(..., "--output", "-o",
                                help="New checkpoint to write; its .log.jsonl and .previews/ go beside it."),
    content: Path = typer.Option(..., "--content", "-c", help="Folder of photos to learn on (searched recursively)."),
    name: Optional[str] = typer.Option(None, "--name", help="Name of the new style (only with one STYLE_IMAGE)."),
    steps: Optional[int] = typer.Option(None, min=1, help=f"Optimizer steps (default: {ADD_STEPS}; with --resume: "
                                                          "the run's own, or the new total)."),
    lr: Optional[float] = typer.Option(None, min=0.0, max=LR_MAX,
                                       help=f"Adam learning rate (default: {STYLE_LR:g}, above a whole network's "
                                            f"{TRAIN.lr:g}: only the new styles' few thousand numbers move)."),
    style_weight: Optional[float] = typer.Option(None, min=0.0, help="Style loss weight (default: the model's)."),
    image_size: Optional[int] = typer.Option(None, min=32, help="Side of the photo crops (default: the model's)."),
    batch_size: Optional[int] = typer.Option(None, min=1, help="Photos per step (default: the model's)."),
    style_size: Optional[int] = typer.Option(None, min=32, help="Long side of the paintings (default: the model's)."),
    preview: Optional[Path] = typer.Option(None, help="Photo for the preview grids (default: the first content photo)."),
    workers: int = typer.Option(TRAIN.workers, min=0, help=f"{WORKERS_HELP} Processes here."),
    device: DeviceOption = "auto",
    vgg_weights: Optional[Path] = typer.Option(None, help="The loss network, if the model was not trained with "
                                                          "the default VGG16."),
    resume: bool = typer.Option(False, "--resume", help="Continue the add-style run saved in --output "
                                                        "(its settings; a new --steps or --lr)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start over in place of an existing --output."),
    precision: Optional[Precision] = typer.Option(None, case_sensitive=False, help="auto, fp32, bf16 or fp16 (default: the model's, usually auto: "
                                                       "bf16 where the hardware runs it natively)."),
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Add styles to a trained model in minutes: only the new styles' norm parameters are learned.

    Every other weight is frozen, so the model's existing styles render exactly as before.
    Settings default to those the model was trained with.

    Examples:

      stylize add-style -m model.safetensors monet.jpg -c photos/ -o model-plus-monet.safetensors

      stylize add-style IMG_0042.jpg --name sunset -c photos/ -o shipped-plus-sunset.safetensors

      stylize add-style -m model.safetensors a.jpg b.jpg -c photos/ -o model-ab.safetensors --resume
    """
    with user_errors():
        require("train", "stylize add-style")
    from ..train.finetune import Overrides, add_styles

    own_process()
    say = verbosity(quiet, verbose)
    model, paintings = model_and_rest(model, style_images)
    model = chosen_model(model)
    with user_errors():
        torch_device = pick_device(device, say)
    if not paintings:
        fail("give at least one STYLE_IMAGE")
    overrides = Overrides(steps=steps, lr=lr, style_weight=style_weight, image_size=image_size,
                          batch_size=batch_size, style_size=style_size, workers=workers,
                          precision=None if precision is None else str(precision))
    if resume and lr is not None:
        echo(f"--resume: continuing with the new --lr {lr:g} instead of the run's own")
    run_training_loop(lambda on_step: add_styles(model, [Path(p) for p in paintings], content, output, name=name,
                                                 overrides=overrides, device=torch_device, vgg_weights=vgg_weights,
                                                 resume=resume, overwrite=overwrite, preview=preview,
                                                 on_step=on_step), say, "add-style")


def distill(
    teacher: Path = typer.Argument(..., help="The model to learn from (e.g. weights/stylize-22.safetensors)."),
    content: Path = typer.Option(..., "--content", "-c", help="Folder of photos to train on (searched recursively)."),
    output: Path = typer.Option(Path("student.safetensors"), "--output", "-o",
                                help="Checkpoint to write; its .log.jsonl and .preview.png go beside it."),
    preset: str = typer.Option(DISTILL.preset, help="The student's architecture (a network preset)."),
    steps: int = typer.Option(DISTILL.steps, min=1, help="Total optimizer steps (with --resume: the new total)."),
    batch_size: int = typer.Option(DISTILL.batch_size, min=1, help="Photos per step."),
    image_size: int = typer.Option(DISTILL.image_size, min=32, help="Side of the square photo crops."),
    resize: int = typer.Option(DISTILL.resize, min=32, help="Short side the photos are resized to before cropping."),
    lr: float = typer.Option(DISTILL.lr, min=0.0, max=LR_MAX,
                             help=f"Adam learning rate, cosine-decayed to {DISTILL.final_lr_fraction:.0%} over the run."),
    style_lr: float = typer.Option(DISTILL.style_lr, min=0.0, max=LR_MAX,
                                   help="Learning rate of the styles' (gamma, beta) rows, decayed alike."),
    gradient_weight: float = typer.Option(DISTILL.gradient_weight, min=0.0,
                                          help="Weight of the image-difference L1 (strokes) beside the pixel L1."),
    seed: int = typer.Option(DISTILL.seed, help="Seed for the initial weights and the data sequence."),
    checkpoint_minutes: float = typer.Option(DISTILL.checkpoint_minutes, min=0.0,
                                             help="Write the checkpoint (and preview) this often."),
    preview: Optional[Path] = typer.Option(None, help="Photo for the preview (default: the first content photo)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run saved in --output (its settings; a new --steps)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start over in place of an existing --output."),
    init_from: Optional[Path] = typer.Option(
        None, "--init-from", help="Start from a released student (e.g. weights/stylize-22-fast.safetensors): its "
                                  "weights, this command's settings, a fresh optimizer and schedule."),
    device: DeviceOption = "auto",
    time_limit: Optional[float] = typer.Option(None, "--time-limit", min=0.0,
                                               help="Stop and save after this many minutes (continue with --resume)."),
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Train a cheaper student network to paint what TEACHER paints, in all its styles (no loss network).

    Example:

      stylize distill weights/stylize-22.safetensors -c photos/ -o fast.safetensors --time-limit 600
    """
    from ..io.images import read_image
    from ..train.distill import distill as run_distill

    own_process()
    say = verbosity(quiet, verbose)
    settings = DistillSettings(preset=preset, steps=steps, batch_size=batch_size, image_size=image_size,
                               resize=resize, lr=lr, style_lr=style_lr,
                               gradient_weight=gradient_weight, seed=seed, checkpoint_minutes=checkpoint_minutes)
    with user_errors():
        photo = read_image(preview).rgb if preview is not None else None
        torch_device = pick_device(device, say)
    run_training_loop(lambda on_step: run_distill(teacher, content, output, settings, resume=resume, overwrite=overwrite,
                                                  init_from=init_from, device=torch_device,
                                                  time_limit=time_limit * 60 if time_limit is not None else None,
                                                  preview_photo=photo, on_step=on_step),
                      say, "distill")
