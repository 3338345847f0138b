"""The ImageNet reference rows load, cite a defined source, and hold the published numbers."""

from __future__ import annotations

from pathlib import Path

import yaml

from mae_transfer.leaderboard.references import load_references
from mae_transfer.classification.protocols import Protocol
from mae_transfer.models.archs import ARCHS

REFERENCES = Path(__file__).resolve().parents[2] / "benchmarks" / "references" / "mae_imagenet.yaml"


def test_every_row_loads_and_cites_a_defined_source() -> None:
    raw = yaml.safe_load(REFERENCES.read_text())
    assert all(row["source"] in raw["sources"] for row in raw["rows"])
    rows = load_references([REFERENCES])
    assert len(rows) == len(raw["rows"])
    assert all(r.task == "imagenet" and r.arch in ARCHS and Protocol.from_spelling(r.protocol) for r in rows)


def test_the_published_mae_numbers_are_the_first_rows_of_their_keys() -> None:
    first: dict[tuple, float] = {}
    for row in load_references([REFERENCES]):
        if row.pretraining == "MAE":
            first.setdefault((row.arch, row.protocol, row.resolution), row.value)
    assert first == {
        ("vit_base_patch16", "finetune", 224): 83.6, ("vit_large_patch16", "finetune", 224): 85.9,
        ("vit_huge_patch14", "finetune", 224): 86.9, ("vit_huge_patch14", "finetune", 448): 87.8,
        ("vit_base_patch16", "linear", 224): 68.0, ("vit_large_patch16", "linear", 224): 75.8,
        ("vit_huge_patch14", "linear", 224): 76.6,
        ("vit_large_patch16", "partial-1", 224): 81.0, ("vit_large_patch16", "partial-mlp", 224): 79.1,
    }
