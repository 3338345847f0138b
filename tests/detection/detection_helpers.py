"""Shared pieces of the detection tests: paths, config overrides and the train/test entry points."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SMOKE_CONFIG = REPO / "configs" / "smoke" / "coco_maskrcnn.py"
COCO_CONFIGS = sorted((REPO / "configs" / "coco").glob("*.py"))


def data_root_options(root: Path) -> dict[str, str]:
    """The cfg-options that point the smoke config at a dataset root (see its header)."""
    prefix = f"{root}/"
    ann_file = f"{root}/annotations/instances_val2017.json"
    return {
        "train_dataloader.dataset.data_root": prefix,
        "val_dataloader.dataset.data_root": prefix,
        "test_dataloader.dataset.data_root": prefix,
        "val_evaluator.ann_file": ann_file,
        "test_evaluator.ann_file": ann_file,
    }


def as_cli(options: dict[str, object]) -> list[str]:
    """``--cfg-options`` arguments for ``options``."""
    return ["--cfg-options", *(f"{key}={value}" for key, value in options.items())] if options else []


def smoke_config(root: Path, work_dir: Path, **options: object):
    """The smoke config with the data root, the work dir and ``options`` (key paths) applied."""
    from mmengine.config import Config

    cfg = Config.fromfile(str(SMOKE_CONFIG))
    cfg.merge_from_dict({**data_root_options(root), **options})
    cfg.work_dir = str(work_dir)
    return cfg


def train_command(work_dir: Path, options: dict[str, object], *extra: str) -> list[str]:
    """``python tools/train.py`` on the smoke config."""
    return [sys.executable, str(REPO / "tools" / "train.py"), str(SMOKE_CONFIG), "--work-dir", str(work_dir),
            *extra, *as_cli(options)]


def subprocess_env() -> dict[str, str]:
    """The environment for child processes: repo importable, two threads, no GPU."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("OMP_NUM_THREADS", "2")
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def run(command: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run ``command`` from the repo root; on failure the assertion shows the output tail."""
    result = subprocess.run(command, cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{command[:3]} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result
