"""Fixtures for the matrix tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from matrix_helpers import REPO


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    """Environment for ``mae-transfer`` subprocesses: private digest cache; torch threads as the caller set
    them (``make test``: 1, one per xdist worker), else 2."""
    return {**os.environ, "MAE_TRANSFER_CACHE": str(tmp_path / "cache"),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}


