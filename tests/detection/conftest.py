"""Fixtures for the detection tests: one synthetic COCO set per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from mae_transfer.data import make_dataset


@pytest.fixture(scope="session")
def synthetic_coco(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default synthetic COCO set (96 train / 32 val images of 128x128, seed 0)."""
    return make_dataset("coco", tmp_path_factory.mktemp("coco_synthetic"), seed=0)
