"""The paper matrix's ImageNet-1k cells get their own leaderboard table, one row per protocol, with references."""

from __future__ import annotations

from pathlib import Path

import pytest

from mae_transfer.leaderboard import build_leaderboard
from mae_transfer.matrix.plan.planner import plan_matrix
from mae_transfer.matrix.spec.matrix_spec import load_spec

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture()
def markdown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MAE_TRANSFER_CACHE", str(tmp_path / "cache"))
    plan = plan_matrix(load_spec(BENCHMARKS / "mae_paper.yaml", work_root=tmp_path / "runs"))
    return build_leaderboard(plan).render("md")


def _section(markdown: str, title_start: str) -> list[str]:
    sections = markdown.split("\n## ")
    (found,) = [s for s in sections if s.startswith(title_start)]
    return found.splitlines()


def test_imagenet_table_has_a_row_per_protocol_with_its_reference(markdown: str) -> None:
    lines = _section(markdown, "ImageNet-1K")
    references = {tuple(cell.strip() for cell in line.strip("|").split("|")[1:4]): line
                  for line in lines if line.startswith("| reference (MAE")}
    # (arch, recipe, variant) -> the first MAE number of mae_imagenet.yaml for it: before any cell has run,
    # the backbones' pre-training is not known (format auto), so the nearest is the first row of each key
    released, fig9 = "| reference (MAE, released 1600 ep norm-pix) |", "| reference (MAE, 800 ep raw pixels) |"
    expected = {
        ("ViT-B", "paper", "finetune"): ("83.6", released), ("ViT-L", "paper", "finetune"): ("85.9", released),
        ("ViT-H", "paper", "finetune"): ("86.9", released), ("ViT-H", "paper", "finetune 448px"): ("87.8", released),
        ("ViT-B", "paper", "linear"): ("68.0", released), ("ViT-L", "paper", "linear"): ("75.8", released),
        ("ViT-H", "paper", "linear"): ("76.6", released), ("ViT-L", "paper", "partial-1"): ("81.0", fig9),
        ("ViT-L", "paper", "partial-mlp"): ("79.1", fig9),
    }
    assert set(references) == set(expected)
    for key, (value, label) in expected.items():
        assert f"| {value} [" in references[key] and references[key].startswith(label), (key, references[key])


def test_table6_keeps_only_the_transfer_datasets(markdown: str) -> None:
    header = next(line for line in _section(markdown, "Table 6") if line.startswith("| backbone"))
    assert "imagenet" not in header.lower() and "iNat2017" in header and "Places365" in header
