"""Shared pieces of the detection tests: paths, config overrides and the train/test entry points."""

from __future__ import annotations

from pathlib import Path

from training_helpers import REPO, run, subprocess_env  # noqa: F401  (re-exported to the tests)
from training_helpers import train_command as shared_train_command
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


def smoke_config(root: Path, work_dir: Path, **options: object):
    """The smoke config with the data root, the work dir and ``options`` (key paths) applied."""
    from mmengine.config import Config

    cfg = Config.fromfile(str(SMOKE_CONFIG))
    cfg.merge_from_dict({**data_root_options(root), **options})
    cfg.work_dir = str(work_dir)
    return cfg


def train_command(work_dir: Path, options: dict[str, object], *extra: str) -> list[str]:
    """``python tools/train.py`` on the smoke config."""
    return shared_train_command(SMOKE_CONFIG, work_dir, options, *extra)
