"""The model cards' machine-readable front matter agrees with the weights and the evaluation."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
import yaml

from stylize.model import checkpoint

ROOT = Path(__file__).resolve().parent.parent
CARDS = sorted((ROOT / "models").glob("*/README.md"))


def front_matter(card: Path) -> dict:
    """The YAML block between the leading ``---`` lines of a model card."""
    text = card.read_text()
    assert text.startswith("---\n"), f"{card} has no front matter"
    return yaml.safe_load(text.split("---\n", 2)[1])


def card_metrics(meta: dict) -> dict[str, float]:
    """The front matter's evaluation figures by metric type (the card has one result)."""
    (result,) = meta["model-index"][0]["results"]
    return {m["type"]: m["value"] for m in result["metrics"]}


def table_column(path: Path, column: int) -> list[float]:
    """One numeric column of a markdown table's body rows (``column`` indexes the cells as a list: 0 first, -1 last)."""
    rows = [row for row in path.read_text().splitlines()[2:] if row.startswith("|")]
    return [float(row.strip().strip("|").split("|")[column]) for row in rows]


def evaluation_ratios(card: Path) -> list[float]:
    """The last column (network / L-BFGS 100) of the card's evaluation.md table."""
    return table_column(card.parent / "evaluation.md", -1)


@pytest.mark.parametrize("card", CARDS, ids=lambda card: card.parent.name)
def test_front_matter_describes_the_shipped_weights(card: Path) -> None:
    meta = front_matter(card)
    name = card.parent.name
    assert {"license", "tags", "datasets", "model_architecture", "model-index"} <= set(meta)
    assert meta["library_name"] == "stylize" and "style-transfer" in meta["tags"]
    ckpt = checkpoint.load(ROOT / "weights" / f"{name}.safetensors")
    assert meta["model_architecture"] == ckpt.training["preset"]
    assert meta["styles"] == len(ckpt.styles)
    assert meta["parameters"] == sum(p.numel() for p in ckpt.net.parameters())
    metrics = card_metrics(meta)
    ratios = evaluation_ratios(card)
    assert len(ratios) == len(ckpt.styles)
    assert metrics["loss_ratio_vs_lbfgs_100"] == pytest.approx(statistics.median(ratios), abs=0.006)
    assert metrics["loss_ratio_vs_lbfgs_100_min"] == min(ratios)
    assert metrics["loss_ratio_vs_lbfgs_100_max"] == max(ratios)
    # The prose is still there after the front matter.
    assert f"# {name}" in card.read_text().split("---\n", 2)[2]


STUDENT_CARDS = [card for card in CARDS if (card.parent / "evaluation-vs-teacher.md").exists()]


@pytest.mark.parametrize("card", STUDENT_CARDS, ids=lambda card: card.parent.name)
def test_teacher_metrics_match_the_committed_tables(card: Path) -> None:
    """A distilled model's figures against its teacher are the ones its tables hold, not stale copies."""
    metrics = card_metrics(front_matter(card))
    vs_teacher = table_column(card.parent / "evaluation-vs-teacher.md", -1)
    psnr = table_column(card.parent / "teacher-psnr.md", 1)
    assert metrics["loss_ratio_vs_teacher"] == pytest.approx(statistics.median(vs_teacher), abs=0.006)
    assert metrics["loss_ratio_vs_teacher_max"] == pytest.approx(max(vs_teacher), abs=0.006)
    assert metrics["psnr_vs_teacher"] == pytest.approx(statistics.median(psnr), abs=0.006)
    assert metrics["psnr_vs_teacher_min"] == pytest.approx(min(psnr), abs=0.006)
