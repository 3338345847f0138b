"""Helpers for the segmentation tests: run tools/train.py / tools/test.py on the smoke config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SMOKE_CONFIG = REPO / "configs" / "smoke" / "ade20k_upernet.py"


def data_root_options(root: Path) -> dict[str, object]:
    """The --cfg-options that point the smoke config at ``root``."""
    return {f"{split}_dataloader.dataset.data_root": str(root) for split in ("train", "val", "test")}


def train_command(work_dir: Path, options: dict[str, object], *extra: str) -> list[str]:
    """``tools/train.py`` on the smoke config with ``options`` as --cfg-options."""
    pairs = [f"{key}={value}" for key, value in options.items()]
    return [sys.executable, str(REPO / "tools" / "train.py"), str(SMOKE_CONFIG), "--work-dir", str(work_dir),
            *extra, "--cfg-options", *pairs]


def subprocess_env() -> dict[str, str]:
    """The environment for training subprocesses: the checkout importable, one CPU thread."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.setdefault("OMP_NUM_THREADS", "1")  # 2 threads on a shared 2-core machine run ~10x slower
    return env


def run(command: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run ``command`` from the repository root; fail the test with its output tail on error."""
    result = subprocess.run(command, cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(command[:3])} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result
