"""`metrics.json`: COCO fractions become percent; undefined COCO stats (-1) are not -100."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from mae_transfer.integrations.metrics_file import to_percent, write_metrics_file


def test_coco_fractions_scale_and_undefined_stats_drop() -> None:
    logged = {
        "coco/bbox_mAP": 0.822,
        "coco/bbox_mAP_l": -1.0,
        "coco/bbox_mAP_copypaste": "0.822 1.000 -1.000",
        "mIoU": np.float32(41.5),
        "accuracy/top1": torch.tensor(96.25),
    }
    percent = to_percent(logged)
    assert set(percent) == {"coco/bbox_mAP", "mIoU", "accuracy/top1"}
    assert abs(percent["coco/bbox_mAP"] - 82.2) < 1e-9
    assert percent["mIoU"] == 41.5 and percent["accuracy/top1"] == 96.25


def test_raw_keeps_what_was_logged(tmp_path: Path) -> None:
    path = write_metrics_file(
        tmp_path / "metrics.json", {"coco/segm_mAP": 0.5, "coco/segm_mAP_l": -1.0}, iteration=7, epoch=0, checkpoint="last"
    )
    payload = json.loads(path.read_text())
    assert payload["metrics"] == {"coco/segm_mAP": 50.0}
    assert payload["raw"] == {"coco/segm_mAP": 0.5, "coco/segm_mAP_l": -1.0}
    assert payload["iteration"] == 7
