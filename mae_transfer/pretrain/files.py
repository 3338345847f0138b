"""Where a pre-training run writes its checkpoints (no torch: the matrix plans with these names)."""

from __future__ import annotations

import os
from pathlib import Path


def checkpoint_name(epoch_index: int) -> str:
    """``checkpoint-{epoch_index}.pth``, the official name (0-based index of the last epoch)."""
    return f"checkpoint-{epoch_index}.pth"


def pretrain_checkpoint_path(work_dir: str | os.PathLike, epochs: int) -> Path:
    """Where a pre-training run in ``work_dir`` writes its checkpoint after ``epochs`` finished epochs.

    Example: ``pretrain_checkpoint_path("work/mae_b", 800)`` is ``work/mae_b/checkpoint-799.pth``.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs: expected a positive number of finished epochs, got {epochs!r}")
    return Path(work_dir) / checkpoint_name(epochs - 1)
