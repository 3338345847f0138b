"""Real images, real labels: scikit-learn's handwritten digits exported into the official iNat
JSON and Places file-list layouts, fine-tuned through the real mmengine Runner on CPU."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from classification_helpers import DIGIT_NAMES, SMOKE_INAT, SMOKE_PLACES, build_runner, digits_splits, load_smoke_config

import mae_transfer.integrations.classification  # noqa: F401  (registers the task)
from mae_transfer.data import check_dataset
from mae_transfer.data.inat import write_inat
from mae_transfer.data.places import write_places

logger = logging.getLogger(__name__)
EPOCHS = 15


@pytest.fixture(scope="module")
def digits() -> dict[str, list]:
    return digits_splits(image_size=32)


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["inat2017", "places365"])
def test_tiny_vit_learns_digits_through_the_runner(
    tmp_path: Path, digits: dict[str, list], layout: str, one_thread: None
) -> None:
    if layout == "inat2017":
        root, config = write_inat(tmp_path / "data", 2017, digits, DIGIT_NAMES), SMOKE_INAT
    else:
        root, config = write_places(tmp_path / "data", "places365", digits, DIGIT_NAMES), SMOKE_PLACES
    assert check_dataset(layout, root).ok
    cfg = load_smoke_config(config, root, tmp_path / "work", num_classes=10)
    cfg.train_dataloader.batch_size = 32
    # digits are not mirror-symmetric and the run is short and from scratch: no flip,
    # RandAugment or Mixup/CutMix here (they are covered by the model and smoke tests);
    # RandomResizedCrop, random erasing and label smoothing stay on
    cfg.train_dataloader.dataset.pipeline[1].update(hflip=0.0, auto_augment=None)
    cfg.model.mixup = None
    cfg.optim_wrapper.optimizer.lr = 2e-3
    cfg.train_cfg.max_epochs = cfg.train_cfg.val_interval = cfg.param_scheduler[1].end = EPOCHS
    cfg.default_hooks.checkpoint.interval = EPOCHS
    cfg.default_hooks.logger.interval = 20
    runner = build_runner(cfg)
    assert len(runner.val_dataloader.dataset) == 359 and runner.val_dataloader.dataset.metainfo["classes"][3]
    start = time.perf_counter()
    runner.train()
    metrics = runner.val()
    logger.warning("digits in %s layout: top-1 %.2f%%, top-5 %.2f%% after %d epochs in %.1fs",
                   layout, metrics["accuracy/top1"], metrics["accuracy/top5"], EPOCHS, time.perf_counter() - start)
    assert metrics["accuracy/top1"] >= 90.0
    assert metrics["accuracy/top5"] >= metrics["accuracy/top1"]
