"""Quality evaluation: the network's perceptual loss beside an optimization baseline.

For each style and each test photo, the loss that training minimizes (content + style +
TV, same VGG16 and weights) is measured on the network's output, and on the result of
Gatys et al.'s method: L-BFGS on the pixels, starting from the photo, after a few
iteration budgets. Johnson et al. report their network matching 50 to 80 iterations;
a network at or below the 100-iteration loss is doing its job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import Tensor

from .checkpoint import Checkpoint
from .data import list_images
from .engine import FastStyleNet
from .imageio import read_image, resize_long_side
from .loss import LossWeights, PerceptualLoss


LINE_SEARCH_EVALS = 25
"""Loss evaluations allowed per L-BFGS iteration (torch's own line-search limit)."""


@dataclass
class StyleScores:
    """Mean loss terms over the photos, for the network and each L-BFGS budget."""

    style: str
    network: dict[str, float]
    baseline: dict[int, dict[str, float]] = field(default_factory=dict)


def loss_terms(loss: PerceptualLoss, output: Tensor, photo: Tensor, style: Tensor) -> dict[str, float]:
    """Content, style, TV and total loss of ``output`` (a batch of one) as plain numbers."""
    with torch.no_grad():
        return {k: v.item() for k, v in loss(output, photo, style).items()}


def gatys(loss: PerceptualLoss, photo: Tensor, style: Tensor, budgets: Sequence[int]) -> dict[int, Tensor]:
    """Optimize the pixels from the photo with L-BFGS; the image after each budget of iterations.

    Each ``step`` is one iteration (``max_iter=1``) so the image can be taken at every
    budget. ``max_eval`` must then be given: its default, ``max_iter * 5 // 4``, would leave
    the strong-Wolfe line search no evaluation beyond its first trial step, so the first
    trial that raised the loss would become a zero step and L-BFGS would never move again.
    """
    pixels = photo.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([pixels], lr=1.0, max_iter=1, max_eval=LINE_SEARCH_EVALS, history_size=50,
                                  line_search_fn="strong_wolfe")
    results: dict[int, Tensor] = {}

    def closure() -> Tensor:
        optimizer.zero_grad()
        total = loss(pixels.clamp(0, 1), photo, style)["total"]
        total.backward()
        return total

    for iteration in range(1, max(budgets) + 1):
        optimizer.step(closure)
        if iteration in budgets:
            results[iteration] = pixels.detach().clamp(0, 1).clone()
    return results


def load_test_photos(photos_dir: Path, size: int, limit: int | None = None) -> list[Tensor]:
    """The first ``limit`` photos of ``photos_dir`` (sorted by name), long side resized to ``size``."""
    return [resize_long_side(read_image(p).rgb, size) for p in list_images(photos_dir, "test photo")[:limit]]


def evaluate(ckpt: Checkpoint, style_images: dict[str, Tensor], photos_dir: Path, *, weights: LossWeights,
             vgg: torch.nn.Module, size: int = 512, budgets: Sequence[int] = (50, 100, 300), limit: int | None = None,
             device: torch.device = torch.device("cpu"),
             on_progress: Callable[[str, int, int], None] | None = None) -> list[StyleScores]:
    """Scores for every style in ``style_images`` (name -> painting) that the checkpoint holds.

    Photos are resized to long side ``size``; ``limit`` caps their number (for quick runs).
    """
    photos = load_test_photos(photos_dir, size, limit)
    net = FastStyleNet(ckpt.net.to(device).eval())
    scores = []
    for name, painting in style_images.items():
        index = ckpt.styles.index(name)
        loss = PerceptualLoss(vgg, [painting.to(device)], weights).to(device)
        zero = torch.zeros(1, dtype=torch.long, device=device)
        network_terms, baseline_terms = [], {b: [] for b in budgets}
        for i, photo in enumerate(photos):
            x = photo[None].to(device)
            with torch.no_grad():
                network_terms.append(loss_terms(loss, net(x, index), x, zero))
            for budget, image in gatys(loss, x, zero, budgets).items():
                baseline_terms[budget].append(loss_terms(loss, image, x, zero))
            if on_progress is not None:
                on_progress(name, i + 1, len(photos))
        baselines = {b: mean_terms(t) for b, t in baseline_terms.items()}
        scores.append(StyleScores(name, mean_terms(network_terms), baselines))
    return scores


def mean_terms(rows: list[dict[str, float]]) -> dict[str, float]:
    """Each loss term averaged over photos (one dict per photo, as :func:`loss_terms` gives)."""
    return {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}


TARGET_BUDGET = 100
"""The baseline a network should match: Johnson et al.'s networks matched 50 to 80 iterations."""


def markdown_table(scores: list[StyleScores]) -> str:
    """One row per style: the network's loss terms, each baseline's total, and the verdict.

    The verdict column, when the 100-iteration baseline was run, is the network's total
    divided by it: at or below 1 means the network is as good as 100 L-BFGS iterations.
    """
    budgets = sorted(scores[0].baseline) if scores else []
    verdict = TARGET_BUDGET in budgets
    head = ["style", "network content", "network style", "network total", *[f"L-BFGS {b}" for b in budgets]]
    head += [f"network / L-BFGS {TARGET_BUDGET}"] if verdict else []
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in scores:
        cells = [s.style, f"{s.network['content']:.4g}", f"{s.network['style']:.4g}", f"{s.network['total']:.4g}"]
        cells += [f"{s.baseline[b]['total']:.4g}" for b in budgets]
        cells += [f"{s.network['total'] / s.baseline[TARGET_BUDGET]['total']:.2f}"] if verdict else []
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
