"""faster-coco-eval and pycocotools give the same COCO stats; `MAETransferFastCocoMetric` wires it into mmdet."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from detection_helpers import REPO
from pycocotools.coco import COCO

import mmdet.evaluation.metrics.coco_metric as mmdet_coco_metric
from mmengine.registry import DefaultScope
from mae_transfer.data.coco import SYNTHETIC_CLASSES, annotation_file
from mae_transfer.integrations.coco_metric import MAETransferFastCocoMetric
from mmdet.evaluation.metrics import CocoMetric
from mmdet.registry import METRICS


def _benchmark_module():
    spec = importlib.util.spec_from_file_location("coco_eval_benchmark", REPO / "benchmarks" / "speed" / "coco_eval.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated() -> tuple:
    bench = _benchmark_module()
    ground_truth = bench.make_ground_truth(120, seed=5)
    return bench, ground_truth, bench.make_predictions(ground_truth, seed=5)


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_same_twelve_stats_within_1e_4(generated: tuple, iou_type: str) -> None:
    bench, ground_truth, (bbox_results, segm_results) = generated
    results = bbox_results if iou_type == "bbox" else segm_results
    reference, _ = bench.evaluate("pycocotools", ground_truth, results, iou_type)
    fast, _ = bench.evaluate("faster-coco-eval", ground_truth, results, iou_type)
    assert reference.shape == fast.shape == (12,)
    assert 0.05 < reference[0] < 0.95, "predictions should be neither perfect nor useless"
    np.testing.assert_allclose(fast, reference, atol=1e-4, rtol=0)


def _predictions(root: Path, seed: int = 0) -> list[dict]:
    """mmdet-style data samples for the val split: jittered ground truth plus false positives."""
    coco = COCO(str(annotation_file(root, "val")))
    label_of = {cat_id: index for index, cat_id in enumerate(sorted(coco.cats))}
    rng = np.random.default_rng(seed)
    samples = []
    for image_id, image in coco.imgs.items():
        height, width = image["height"], image["width"]
        boxes, scores, labels, masks = [], [], [], []
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=[image_id], iscrowd=False)):
            x, y, w, h = ann["bbox"]
            dx, dy = rng.normal(0, 2, 2)
            boxes.append([x + dx, y + dy, x + w + dx, y + h + dy])
            mask = np.roll(coco.annToMask(ann), (int(round(dy)), int(round(dx))), axis=(0, 1))
            masks.append(mask.astype(bool))
            scores.append(rng.uniform(0.5, 1.0))
            labels.append(label_of[ann["category_id"]])
        for _ in range(2):
            x0, y0 = rng.uniform(0, width - 20, 2)
            boxes.append([x0, y0, x0 + 20, y0 + 20])
            mask = np.zeros((height, width), dtype=bool)
            mask[int(y0) : int(y0) + 20, int(x0) : int(x0) + 20] = True
            masks.append(mask)
            scores.append(rng.uniform(0.05, 0.7))
            labels.append(int(rng.integers(len(label_of))))
        samples.append(
            {
                "img_id": image_id,
                "ori_shape": (height, width),
                "pred_instances": {
                    "bboxes": torch.tensor(boxes, dtype=torch.float32),
                    "scores": torch.tensor(scores, dtype=torch.float32),
                    "labels": torch.tensor(labels),
                    "masks": torch.from_numpy(np.stack(masks)),
                },
            }
        )
    return samples


def _evaluate(metric_type: str, root: Path, samples: list[dict], **options) -> dict[str, float]:
    # mmdet's registry, whatever default scope an earlier test in this process left (an mmseg
    # Runner leaves "mmseg", and a registry builds from the default scope's registry)
    with DefaultScope.overwrite_default_scope("mmdet"):
        metric = METRICS.build(
            dict(type=metric_type, ann_file=str(annotation_file(root, "val")), metric=["bbox", "segm"], **options)
        )
    metric.dataset_meta = {"classes": SYNTHETIC_CLASSES}
    metric.process({}, samples)
    return metric.evaluate(len(samples))


def test_fast_metric_reports_what_coco_metric_reports(synthetic_coco: Path) -> None:
    samples = _predictions(synthetic_coco)
    reference = _evaluate("CocoMetric", synthetic_coco, samples)
    fast = _evaluate("MAETransferFastCocoMetric", synthetic_coco, samples)
    assert set(fast) == set(reference) and "coco/segm_mAP_50" in fast
    assert 0.3 < reference["coco/bbox_mAP"] < 1.0
    for key, value in reference.items():
        assert fast[key] == pytest.approx(value, abs=1e-3), key
    assert mmdet_coco_metric.COCOeval.__module__.startswith("pycocotools"), "backend swap must not leak"


def test_fast_metric_is_a_coco_metric_and_refuses_bad_options(synthetic_coco: Path) -> None:
    assert issubclass(MAETransferFastCocoMetric, CocoMetric)
    with pytest.raises(ValueError, match="use_mp_eval"):
        MAETransferFastCocoMetric(ann_file=str(annotation_file(synthetic_coco, "val")), use_mp_eval=True)
    with pytest.raises(ValueError, match="iou_workers must be a positive integer"):
        MAETransferFastCocoMetric(ann_file=str(annotation_file(synthetic_coco, "val")), iou_workers=0)


def test_fast_metric_with_iou_threads_reports_the_same(synthetic_coco: Path) -> None:
    samples = _predictions(synthetic_coco)
    one = _evaluate("MAETransferFastCocoMetric", synthetic_coco, samples)
    several = _evaluate("MAETransferFastCocoMetric", synthetic_coco, samples, iou_workers=4)
    assert one == several
