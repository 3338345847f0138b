"""Fixtures over the checkpoint cases of checkpoint_cases.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from checkpoint_cases import CASES, Case, _mae_full, save


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> Case:
    """Every supported format, one at a time."""
    return CASES[request.param]()


@pytest.fixture
def mae_checkpoint(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """An official-format ``_full`` vit_tiny checkpoint on disk and its encoder tensors."""
    built = _mae_full()
    return save(built, tmp_path), built.expected
