"""ADE20K evaluation semantics on our synthetic label maps: mmseg's IoUMetric, reduce_zero_label.

The label maps go through mmseg's own ``LoadAnnotations(reduce_zero_label=True)`` (0 -> 255,
k -> k - 1) and random predictions through ``IoUMetric``; an independent numpy computation on
the raw PNGs (0 = unlabeled, ignored) must give the same aAcc / mIoU / mAcc, and the metrics
file the leaderboard reads must keep them in percent.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.evaluation import IoUMetric
from PIL import Image

from mae_transfer.integrations.metrics_file import write_metrics_file

NUM_CLASSES = 150


def _predictions(labels: list[np.ndarray], seed: int) -> list[np.ndarray]:
    """Random predictions in 0..149: half the pixels copy the truth, the rest are noise."""
    rng = np.random.default_rng(seed)
    out = []
    for raw in labels:
        truth = np.where(raw == 0, 0, raw.astype(np.int64) - 1)
        noise = rng.choice([0, 2, 4, 12, 21, 41, 76, 149, 100], size=raw.shape)
        out.append(np.where(rng.random(raw.shape) < 0.5, truth, noise))
    return out


def _iou_metric(label_paths: list[Path], predictions: list[np.ndarray]) -> dict[str, float]:
    loader = LoadAnnotations(reduce_zero_label=True)
    metric = IoUMetric(iou_metrics=["mIoU"])
    metric.dataset_meta = dict(classes=[f"class{i}" for i in range(NUM_CLASSES)])
    for path, prediction in zip(label_paths, predictions):
        gt = loader(dict(seg_map_path=str(path), reduce_zero_label=True, seg_fields=[]))["gt_seg_map"]
        sample = dict(pred_sem_seg=dict(data=torch.from_numpy(prediction)[None]),
                      gt_sem_seg=dict(data=torch.from_numpy(gt.astype(np.int64))[None]))
        metric.process({}, [sample])
    return metric.evaluate(len(label_paths))


def _reference(labels: list[np.ndarray], predictions: list[np.ndarray]) -> dict[str, float]:
    """aAcc, mIoU, mAcc in percent from raw ADE20K labels (0 ignored, k -> class k - 1)."""
    intersect, predicted, labelled = (np.zeros(NUM_CLASSES) for _ in range(3))
    for raw, prediction in zip(labels, predictions):
        valid = raw != 0
        truth, guess = raw[valid].astype(np.int64) - 1, prediction[valid]
        intersect += np.bincount(truth[truth == guess], minlength=NUM_CLASSES)
        predicted += np.bincount(guess, minlength=NUM_CLASSES)
        labelled += np.bincount(truth, minlength=NUM_CLASSES)
    union = predicted + labelled - intersect
    with np.errstate(invalid="ignore", divide="ignore"):
        iou, acc = intersect / union, intersect / labelled
    return {"aAcc": 100 * intersect.sum() / labelled.sum(), "mIoU": 100 * np.nanmean(iou), "mAcc": 100 * np.nanmean(acc)}


@pytest.fixture(scope="module")
def val_labels(synthetic_ade20k: Path) -> tuple[list[Path], list[np.ndarray]]:
    paths = sorted((synthetic_ade20k / "annotations" / "validation").glob("*.png"))
    return paths, [np.asarray(Image.open(path)) for path in paths]


@pytest.mark.parametrize("seed", [0, 1])
def test_iou_metric_matches_reference_on_random_predictions(val_labels, seed: int) -> None:
    paths, labels = val_labels
    assert any((label == 0).any() for label in labels), "ignored pixels must be present"
    predictions = _predictions(labels, seed)
    theirs = _iou_metric(paths, predictions)
    ours = _reference(labels, predictions)
    for key in ("aAcc", "mIoU", "mAcc"):
        assert float(theirs[key]) == pytest.approx(round(ours[key], 2), abs=1e-5), key  # float32 of 2 decimals
    assert 5.0 < ours["mIoU"] < 80.0


def test_unlabeled_pixels_do_not_count(val_labels) -> None:
    paths, labels = val_labels
    predictions = _predictions(labels, 0)
    changed = [np.where(label == 0, 149 - prediction, prediction) for label, prediction in zip(labels, predictions)]
    assert any((a != b).any() for a, b in zip(predictions, changed))
    assert _iou_metric(paths, predictions) == _iou_metric(paths, changed)


def test_metrics_file_keeps_iou_metric_percent(val_labels, tmp_path: Path) -> None:
    paths, labels = val_labels
    metrics = _iou_metric(paths, _predictions(labels, 0))
    path = write_metrics_file(tmp_path / "metrics.json", metrics, iteration=1, epoch=0, checkpoint="last")
    written = json.loads(path.read_text())["metrics"]
    assert {key: written[key] for key in ("aAcc", "mIoU", "mAcc")} == {k: float(metrics[k]) for k in ("aAcc", "mIoU", "mAcc")}
