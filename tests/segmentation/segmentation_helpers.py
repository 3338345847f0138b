"""Helpers for the segmentation tests: run tools/train.py / tools/test.py on the smoke config."""

from __future__ import annotations

from pathlib import Path

from training_helpers import REPO, run, subprocess_env  # noqa: F401  (re-exported to the tests)
from training_helpers import train_command as shared_train_command
SMOKE_CONFIG = REPO / "configs" / "smoke" / "ade20k_upernet.py"


def data_root_options(root: Path) -> dict[str, object]:
    """The --cfg-options that point the smoke config at ``root``."""
    return {f"{split}_dataloader.dataset.data_root": str(root) for split in ("train", "val", "test")}


def train_command(work_dir: Path, options: dict[str, object], *extra: str) -> list[str]:
    """``tools/train.py`` on the smoke config with ``options`` as --cfg-options."""
    return shared_train_command(SMOKE_CONFIG, work_dir, options, *extra)
