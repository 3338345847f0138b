"""Fixtures for the segmentation tests: one synthetic ADE20K set per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from mae_transfer.data import make_dataset


@pytest.fixture(scope="session")
def synthetic_ade20k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default synthetic ADE20K set (48 train / 16 val images of 160x224, seed 0)."""
    return make_dataset("ade20k", tmp_path_factory.mktemp("ade20k_synthetic") / "ADEChallengeData2016", seed=0)
