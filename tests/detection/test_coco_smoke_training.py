"""CPU smoke training through tools/train.py and the real mmengine Runner: the detector learns.

The untrained detector scores near 0 AP50 on the synthetic val set; after the smoke schedule
(configs/smoke/coco_maskrcnn.py) both box and mask AP50 reach at least 0.5. The final metrics
come from WORK_DIR/metrics.json (percent), as the leaderboard reads them.
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
    assert metrics["coco/bbox_mAP_50"] < 0.05
    assert metrics["coco/segm_mAP_50"] < 0.05


def test_smoke_training_reaches_ap50_of_half(synthetic_coco: Path, tmp_path: Path) -> None:
    max_iters = smoke_config(synthetic_coco, tmp_path).train_cfg.max_iters
    run(train_command(tmp_path, data_root_options(synthetic_coco)), timeout=900)
    payload = json.loads((tmp_path / "metrics.json").read_text())
    metrics = payload["metrics"]
    assert payload["iteration"] == max_iters
    assert metrics["coco/bbox_mAP_50"] >= 50.0, metrics
    assert metrics["coco/segm_mAP_50"] >= 50.0, metrics
    assert (tmp_path / f"iter_{max_iters}.pth").is_file()
