"""Helpers for the classification tests: a real labelled image set, smoke configs, the Runner."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
SMOKE_INAT = REPO / "configs" / "smoke" / "inat_finetune.py"
SMOKE_PLACES = REPO / "configs" / "smoke" / "places_finetune.py"
DIGIT_NAMES = [f"digit_{digit}" for digit in range(10)]


def digits_splits(image_size: int = 32, val_fraction: float = 0.2, seed: int = 0) -> dict[str, list]:
    """scikit-learn's handwritten digits (1,797 real 8x8 scans, shipped with the package),
    upscaled to ``image_size`` RGB images, split at random into train and held-out val."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(seed).permutation(len(digits.target))
    num_val = int(len(order) * val_fraction)
    splits: dict[str, list] = {"train": [], "val": []}
    for position, index in enumerate(order):
        pixels = (digits.images[index] * (255.0 / 16.0)).astype(np.uint8)
        image = Image.fromarray(pixels, mode="L").resize((image_size, image_size), Image.BICUBIC).convert("RGB")
        splits["val" if position < num_val else "train"].append((image, int(digits.target[index])))
    return splits


def set_data(cfg: Any, data_root: str | Path, num_classes: int | None = None) -> None:
    """Point every dataloader of a smoke config at ``data_root`` (the documented key paths)."""
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        cfg[loader].dataset.data_root = str(data_root)
        if num_classes is not None:
            cfg[loader].dataset.num_classes = num_classes
    if num_classes is not None:
        cfg.model.num_classes = num_classes


def load_smoke_config(path: Path, data_root: str | Path, work_dir: str | Path, num_classes: int | None = None):
    """A smoke config with its data root, class count and work dir set, and a unique run name."""
    from mmengine.config import Config

    cfg = Config.fromfile(str(path))
    set_data(cfg, data_root, num_classes)
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = f"test_{uuid.uuid4().hex[:8]}"
    return cfg


def build_runner(cfg: Any):
    """The real mmengine Runner for ``cfg``."""
    from mmengine.runner import Runner

    return Runner.from_cfg(cfg)
