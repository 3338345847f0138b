"""CPU smoke training through tools/train.py and the real mmengine Runner: the detector learns.

The untrained detector scores 0 AP50 on the synthetic val set; the issue's bar is AP50 >= 50
(percent) for boxes and masks after a few CPU minutes. Measured with the smoke config (ViT-Tiny
depth 4 from scratch, 128 px; `tools/train.py ... train_cfg.max_iters=600
train_cfg.val_interval=150`, 2 idle cores): bbox/segm AP 73.1/74.2 at 150 iterations, 83.4/85.0
at 300, 87.6/89.3 at 450, 91.1/89.8 at 600, AP50 100/100 at each. The config stops at 200.
The final metrics come from WORK_DIR/metrics.json (percent), as the leaderboard reads them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from detection_helpers import data_root_options, run, smoke_config, train_command
from mmengine.runner import Runner

pytestmark = pytest.mark.slow


def test_untrained_detector_scores_near_zero(synthetic_coco: Path, tmp_path: Path) -> None:
    runner = Runner.from_cfg(smoke_config(synthetic_coco, tmp_path))
    runner.model.init_weights()
    metrics = runner.val()
    assert metrics["coco/bbox_mAP_50"] < 0.01  # measured 0.000
    assert metrics["coco/segm_mAP_50"] < 0.01  # measured 0.000


# The config's 200 iterations cut to 150 here, its cosine schedule with them (CI time). Measured
# so (2026-12-06): bbox/segm AP 77.1/79.2, AP50 100/100, twice the bar; 64 CPU-s for this file, 81 at 200.
ITERATIONS = 150


def test_smoke_training_learns_to_detect(synthetic_coco: Path, tmp_path: Path) -> None:
    max_iters = ITERATIONS
    assert smoke_config(synthetic_coco, tmp_path).train_cfg.max_iters > max_iters
    schedule = {"train_cfg.max_iters": max_iters, "train_cfg.val_interval": max_iters,
                "param_scheduler.1.end": max_iters, "default_hooks.checkpoint.interval": max_iters}
    run(train_command(tmp_path, {**data_root_options(synthetic_coco), **schedule}), timeout=900)
    payload = json.loads((tmp_path / "metrics.json").read_text())
    metrics = payload["metrics"]
    assert payload["iteration"] == max_iters
    assert metrics["coco/bbox_mAP_50"] >= 50.0, metrics  # untrained 0.0 (test above)
    assert metrics["coco/segm_mAP_50"] >= 50.0, metrics  # untrained 0.0
    assert (tmp_path / f"iter_{max_iters}.pth").is_file()
