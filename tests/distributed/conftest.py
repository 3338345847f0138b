"""Fixtures of the DDP tests: tiny synthetic datasets, one of each kind per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from mae_transfer.data import make_dataset


@pytest.fixture(scope="session")
def tiny_coco(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 train / 8 val images of 128x128 (the smoke config's shape classes)."""
    return make_dataset("coco", tmp_path_factory.mktemp("ddp_coco"), seed=0, num_train=16, num_val=8)


@pytest.fixture(scope="session")
def tiny_ade20k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 train / 4 val images of 160x224."""
    root = tmp_path_factory.mktemp("ddp_ade20k") / "ADEChallengeData2016"
    return make_dataset("ade20k", root, seed=0, num_train=16, num_val=4)


@pytest.fixture(scope="session")
def tiny_inat(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """iNaturalist 2017 layout, 4 classes, 16 train / 8 val images."""
    return make_dataset("inat2017", tmp_path_factory.mktemp("ddp_inat"), seed=0, train_per_class=4, val_per_class=2)
