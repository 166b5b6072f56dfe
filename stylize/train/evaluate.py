"""Quality evaluation: the network's perceptual loss beside an optimization baseline.

For each style and each test photo, the loss that training minimizes (content + style +
TV, same VGG16 and weights) is measured on the network's output, and on the result of
Gatys et al.'s method: L-BFGS on the pixels, starting from the photo, after a few
iteration budgets. Johnson et al. compared at 256 px and up, where their networks
matched 50 to 80 iterations; a network at or below the 100-iteration loss is doing its
job. (At 128 px L-BFGS converges within ~50 iterations, a much harsher target.)

The baseline depends only on the photo, the painting, the size and the loss (weights,
options, loss network), never on the network being evaluated, and it costs minutes per
style where the network costs a forward pass. So each (photo, painting) baseline is
cached on disk under a hash of all of those (:func:`baseline_key`), and evaluating a
new release, or comparing it with the previous one (``previous``), costs only the
networks' forward passes once the cache is filled.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import Tensor

from ..config import EVALUATE_BUDGETS, EVALUATE_SIZE
from ..errors import StylizeError
from ..io.images import read_image
from ..io.pixels import resize_long_side
from ..io.weights import cache_dir
from ..model.checkpoint import Checkpoint
from ..model.engine import FastStyleNet
from .cache import content_digest, read_cached_tensors, write_cached_tensors
from .data import list_images
from .loss import LossWeights, PerceptualLoss
from .seed import keeps_random_stream

LINE_SEARCH_EVALS = 25
"""Loss evaluations allowed per L-BFGS iteration (torch's own line-search limit)."""

HISTORY = 50
"""L-BFGS history size (pairs of past steps kept for the curvature estimate)."""

_CACHE_FORMAT = "stylize-gatys-baseline/1"


def default_cache() -> Path:
    """Where baselines are cached unless told otherwise: ``baselines/`` in stylize's cache folder."""
    return cache_dir() / "baselines"


@dataclass
class StyleScores:
    """Mean loss terms over the photos: the network's, each L-BFGS budget's, a previous network's."""

    style: str
    network: dict[str, float]
    baseline: dict[int, dict[str, float]] = field(default_factory=dict)
    previous: dict[str, float] | None = None


def loss_terms(loss: PerceptualLoss, output: Tensor, photo: Tensor, style: Tensor) -> dict[str, float]:
    """Content, style, TV and total loss of ``output`` (a batch of one) as plain numbers."""
    with torch.no_grad():
        return {k: v.item() for k, v in loss(output, photo, style).items()}


def gatys(loss: PerceptualLoss, photo: Tensor, style: Tensor, budgets: Sequence[int]) -> dict[int, Tensor]:
    """Optimize the pixels from the photo with L-BFGS; the image after each budget of iterations.

    Each ``step`` is one iteration (``max_iter=1``) so the image can be taken at every
    budget. ``max_eval`` must then be given: the line search may use ``max_eval`` minus
    one evaluations, and the default, ``max_iter * 5 // 4``, would leave it none beyond
    its first trial step, so the first trial that raised the loss would become a zero
    step and L-BFGS would never move again.

    Every ``step`` starts by evaluating the loss where the previous one's line search
    stopped, a point that search has already evaluated; the closure answers those from
    the previous step's evaluations (same pixels, bit for bit), which saves about one of
    every two or three VGG passes and leaves every iterate exactly as it was.
    """
    pixels = photo.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([pixels], lr=1.0, max_iter=1, max_eval=LINE_SEARCH_EVALS, history_size=HISTORY,
                                  line_search_fn="strong_wolfe")
    results: dict[int, Tensor] = {}
    previous: list[tuple[Tensor, Tensor, Tensor]] = []  # (pixels, total, gradient) evaluated by the last step
    current: list[tuple[Tensor, Tensor, Tensor]] = []

    def closure() -> Tensor:
        for seen, total, gradient in previous:
            if torch.equal(seen, pixels):
                pixels.grad = gradient.clone()
                return total
        optimizer.zero_grad()
        total = loss(pixels.clamp(0, 1), photo, style)["total"]
        total.backward()
        assert pixels.grad is not None
        current.append((pixels.detach().clone(), total.detach(), pixels.grad.clone()))
        return total

    for iteration in range(1, max(budgets) + 1):
        optimizer.step(closure)
        previous, current = current, []
        if iteration in budgets:
            results[iteration] = pixels.detach().clamp(0, 1).clone()
    return results


def baseline_key(photo: Tensor, painting: Tensor, weights: LossWeights, network_id: str) -> str:
    """sha256 over everything a baseline depends on.

    The photo and painting as evaluated (so their files, the size and the resizing), the
    full loss settings (``weights.to_dict()``: every weight and loss option), the loss
    network's id and the optimizer's settings.
    """
    material = {
        "format": _CACHE_FORMAT,
        "photo": content_digest({"photo": photo.detach().float().cpu()}),
        "painting": content_digest({"painting": painting.detach().float().cpu()}),
        "loss": weights.perceptual_only().to_dict(),
        "loss_network": network_id,
        "lbfgs": {"line_search_evals": LINE_SEARCH_EVALS, "history": HISTORY},
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def read_baseline(path: Path) -> dict[int, dict[str, float]]:
    """The cached loss terms per budget, or ``{}`` when absent or unusable (then it is recomputed)."""
    cached = read_cached_tensors(path)
    if cached is None:
        return {}
    meta, tensors = cached
    try:
        budgets, names = json.loads(meta.get("budgets", "")), json.loads(meta.get("terms", ""))
    except json.JSONDecodeError:
        return {}
    table = tensors.get("terms")
    ok = (meta.get("format") == _CACHE_FORMAT and isinstance(budgets, list) and isinstance(names, list)
          and all(isinstance(b, int) and b > 0 for b in budgets) and all(isinstance(n, str) for n in names)
          and table is not None and tuple(table.shape) == (len(budgets), len(names)) and bool(table.isfinite().all()))
    return {b: dict(zip(names, row.tolist())) for b, row in zip(budgets, table)} if ok else {}


def write_baseline(path: Path, terms: dict[int, dict[str, float]]) -> None:
    """Cache the loss terms per budget (a warning, not an error, when it cannot be written)."""
    budgets = sorted(terms)
    names = list(terms[budgets[0]])
    table = torch.tensor([[terms[b][n] for n in names] for b in budgets], dtype=torch.float64)
    meta = {"format": _CACHE_FORMAT, "budgets": json.dumps(budgets), "terms": json.dumps(names)}
    write_cached_tensors(path, {"terms": table}, meta, "L-BFGS baseline cache")


def baseline(loss: PerceptualLoss, photo: Tensor, style: Tensor, budgets: Sequence[int],
             cache: Path | None = None) -> dict[int, dict[str, float]]:
    """Loss terms of the Gatys baseline after each budget: from the cache file when it has them all.

    Otherwise one L-BFGS run to the largest budget records every smaller one on the way
    (and the cached budgets below it, so the file only grows), and the file is rewritten.
    ``cache`` is the file for this photo and painting (see :func:`baseline_key`); ``None``
    computes without caching.
    """
    stored = read_baseline(cache) if cache is not None else {}
    if not set(budgets) <= stored.keys():
        wanted = sorted(set(budgets) | {b for b in stored if b < max(budgets)})
        fresh = {b: loss_terms(loss, image, photo, style) for b, image in gatys(loss, photo, style, wanted).items()}
        stored = {**stored, **fresh}
        if cache is not None:
            write_baseline(cache, stored)
    return {b: stored[b] for b in budgets}


def load_test_photos(photos_dir: Path, size: int, limit: int | None = None) -> list[Tensor]:
    """The first ``limit`` photos of ``photos_dir`` (sorted by name), long side resized to ``size``."""
    return [resize_long_side(read_image(p).rgb, size) for p in list_images(photos_dir, "test photo")[:limit]]


MAX_BUDGET = 10_000
"""The most L-BFGS iterations a baseline may be given: far past the 50 to 300 an evaluation
uses; more is a typo that would run for days."""


def evaluate(ckpt: Checkpoint, style_images: dict[str, Tensor], photos_dir: Path, *, weights: LossWeights,
             vgg: torch.nn.Module, size: int = EVALUATE_SIZE, budgets: Sequence[int] = EVALUATE_BUDGETS, limit: int | None = None,
             device: torch.device = torch.device("cpu"), cache: Path | None = None,
             previous: Checkpoint | None = None,
             on_progress: Callable[[str, int, int], None] | None = None) -> list[StyleScores]:
    """Scores for every style in ``style_images`` (name -> painting) that the checkpoint holds.

    Photos are resized to long side ``size``; ``limit`` caps their number (for quick runs).
    Baselines are read from and written to the folder ``cache`` (``None``: not cached);
    ``vgg`` must have a ``network_id``, part of the cache key. ``previous``, another
    checkpoint, is scored on the same photos under the same loss, for the styles it holds
    by the same name.
    """
    if any(not 1 <= b <= MAX_BUDGET for b in budgets):
        raise StylizeError(f"L-BFGS budgets must be 1 to {MAX_BUDGET} iterations, got {sorted(budgets)}")
    photos = load_test_photos(photos_dir, size, limit)
    networks = [(c.styles, FastStyleNet(c.net.to(device).eval())) for c in (ckpt, previous) if c is not None]
    scores = []
    for name, painting in style_images.items():
        loss = PerceptualLoss(vgg, [painting.to(device)], weights).to(device)
        zero = torch.zeros(1, dtype=torch.long, device=device)
        measured: list[list[dict[str, float]]] = [[] for _ in networks]
        baseline_terms: dict[int, list[dict[str, float]]] = {b: [] for b in budgets}
        for i, photo in enumerate(photos):
            x = photo[None].to(device)
            for (styles, net), rows in zip(networks, measured):
                if name in styles:
                    with torch.no_grad():
                        rows.append(loss_terms(loss, net(x, styles.index(name)), x, zero))
            key = baseline_key(photo, painting, weights, vgg.network_id)
            for budget, terms in baseline(loss, x, zero, budgets, cache / f"{key}.safetensors" if cache else None).items():
                baseline_terms[budget].append(terms)
            if on_progress is not None:
                on_progress(name, i + 1, len(photos))
        baselines = {b: mean_terms(t) for b, t in baseline_terms.items()}
        before = mean_terms(measured[1]) if previous is not None and measured[1] else None
        scores.append(StyleScores(name, mean_terms(measured[0]), baselines, before))
    return scores


@keeps_random_stream
def evaluate_model(model: Path, styles_dir: Path, photos_dir: Path, *, only: Sequence[str] | None = None,
                   compare: Path | None = None, size: int = EVALUATE_SIZE, budgets: Sequence[int] = EVALUATE_BUDGETS,
                   limit: int | None = None, device: torch.device = torch.device("cpu"),
                   vgg_weights: Path | None = None, cache: Path | None = None, use_cache: bool = True,
                   on_start: Callable[[list[str]], None] | None = None,
                   on_progress: Callable[[str, int, int], None] | None = None) -> list[StyleScores]:
    """``stylize evaluate``: :func:`evaluate` of the checkpoint ``model`` on the paintings it was trained on.

    The paintings in ``styles_dir`` named as the model's styles (``only`` some of them),
    under the loss the model was trained with; ``compare``: a previous checkpoint scored
    alongside. Baselines are cached in ``cache`` (default :func:`default_cache`), or
    neither read nor written without ``use_cache``. ``on_start`` hears the styles to score.
    """
    from ..config import TrainSettings
    from ..model import checkpoint
    from .data import load_styles
    from .vgg import load_vgg

    ckpt = checkpoint.load(model)
    previous = checkpoint.load(compare) if compare is not None else None
    settings = TrainSettings.from_dict(ckpt.training)
    names, paintings = load_styles(styles_dir, settings.style_size)
    chosen = matching_paintings(ckpt.styles, dict(zip(names, paintings)), only, styles_dir)
    if on_start is not None:
        on_start(list(chosen))
    return evaluate(ckpt, chosen, photos_dir, weights=settings.weights, vgg=load_vgg(vgg_weights, device), size=size,
                    budgets=budgets, limit=limit, device=device, cache=(cache or default_cache()) if use_cache else None,
                    previous=previous, on_progress=on_progress)


def matching_paintings(styles: list[str], paintings: dict[str, Tensor], only: Sequence[str] | None,
                       folder: Path) -> dict[str, Tensor]:
    """The paintings of the styles to evaluate (``only``, else every style that has one), by
    name; refuses paintings that are no style of the model (another model's folder), which
    would be scored against nothing meaningful."""
    wanted = list(only) if only else [name for name in styles if name in paintings]
    unknown = [name for name in (only or paintings) if name not in styles]
    missing = [name for name in wanted if name not in paintings]
    if unknown or missing or not wanted:
        problems = [f"not styles of the model: {', '.join(unknown)}" if unknown else "",
                    f"no painting for: {', '.join(missing)}" if missing else "",
                    "none of the model's styles has a painting" if not wanted else ""]
        raise StylizeError(f"the paintings in {folder} do not match the model's styles ("
                           + "; ".join(p for p in problems if p) + "); give the folder the model was trained on, "
                           "or pick styles with --only")
    return {name: paintings[name] for name in wanted}


def mean_terms(rows: list[dict[str, float]]) -> dict[str, float]:
    """Each loss term averaged over photos (one dict per photo, as :func:`loss_terms` gives)."""
    return {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}


TARGET_BUDGET = 100
"""The baseline a network should match: Johnson et al.'s networks matched 50 to 80 iterations."""


WORSE_TOLERANCE = 1.05
"""A new release may make no style's loss worse than this many times the previous release's."""


def markdown_table(scores: list[StyleScores]) -> str:
    """One row per style: the network's loss terms, each baseline's total, and the verdict.

    The verdict column, when the 100-iteration baseline was run, is the network's total
    divided by it: at or below 1 means the network is as good as 100 L-BFGS iterations.
    With a previous network, its total and the ratio of the two (below 1: better now).
    """
    budgets = sorted(scores[0].baseline) if scores else []
    verdict = TARGET_BUDGET in budgets
    compared = any(s.previous is not None for s in scores)
    head = ["style", "network content", "network style", "network total", *[f"L-BFGS {b}" for b in budgets]]
    head += [f"network / L-BFGS {TARGET_BUDGET}"] if verdict else []
    head += ["previous total", "network / previous"] if compared else []
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in scores:
        cells = [s.style, f"{s.network['content']:.4g}", f"{s.network['style']:.4g}", f"{s.network['total']:.4g}"]
        cells += [f"{s.baseline[b]['total']:.4g}" for b in budgets]
        cells += [f"{s.network['total'] / s.baseline[TARGET_BUDGET]['total']:.2f}"] if verdict else []
        if compared:
            old = s.previous
            cells += [f"{old['total']:.4g}", f"{s.network['total'] / old['total']:.3f}"] if old else ["-", "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(scores: list[StyleScores]) -> list[str]:
    """The verdict in a few lines: the median and worst style against L-BFGS 100 and, with a
    previous network, the change per style and whether the release rule holds (the median
    against L-BFGS 100 improves and no style's loss grows by more than :data:`WORSE_TOLERANCE`)."""
    lines = []
    against = {s.style: s.network["total"] / s.baseline[TARGET_BUDGET]["total"]
               for s in scores if TARGET_BUDGET in s.baseline}
    if against:
        lines.append(f"network / L-BFGS {TARGET_BUDGET}: {_median_and_worst(against)}")
    pairs = [s for s in scores if s.previous is not None]
    if not pairs:
        return lines
    change = {s.style: s.network["total"] / s.previous["total"] for s in pairs}
    lines.append(f"network / previous ({len(pairs)} styles): {_median_and_worst(change)}")
    if against:
        before = {s.style: s.previous["total"] / s.baseline[TARGET_BUDGET]["total"] for s in pairs}
        now, then = statistics.median(against[k] for k in before), statistics.median(before.values())
        lines.append(f"previous / L-BFGS {TARGET_BUDGET}: {_median_and_worst(before)}")
        worst = max(change.values())
        verdict = "passes" if now < then and worst <= WORSE_TOLERANCE else "fails"
        lines.append(f"release rule (median / L-BFGS {TARGET_BUDGET} {now:.3f} < {then:.3f}, "
                     f"no style worse than x{WORSE_TOLERANCE:.2f}: worst x{worst:.3f}): {verdict}")
    return lines


def report(scores: list[StyleScores]) -> str:
    """What ``stylize evaluate`` prints: the table, then the median and worst style."""
    return "\n".join([markdown_table(scores), "", *summary(scores)])


def _median_and_worst(ratios: dict[str, float]) -> str:
    worst = max(ratios, key=ratios.__getitem__)
    return f"median {statistics.median(ratios.values()):.3f}, worst {ratios[worst]:.3f} ({worst})"
