#!/usr/bin/env python
"""COCO bbox + segm evaluation time: pycocotools vs faster-coco-eval on the same predictions.

Generates a COCO-style ground truth (polygons, a few uncompressed-RLE crowd regions, 80
categories) and detections for it (jittered true positives with RLE masks, wrong-class and
background false positives), then runs ``evaluate(); accumulate(); summarize()`` with
pycocotools' ``COCOeval`` and with ``COCOeval_faster`` exactly as ``MAETransferFastCocoMetric`` does (the
same pycocotools ``COCO`` objects, only the COCOeval class differs). Prints a table with the
times, the speed-up and the largest difference over the 12 summary stats; exits non-zero when
the stats differ by more than 1e-4 or the speed-up is below ``--min-speedup``.

    python benchmarks/speed/coco_eval.py --images 1000
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

WIDTH, HEIGHT = 640, 480
NUM_CATEGORIES = 80


def _polygon(rng: np.random.Generator, cx: float, cy: float, rx: float, ry: float) -> list[float]:
    """A star-shaped polygon around (cx, cy) with 12 jittered vertices, clipped to the image."""
    points = []
    for k in range(12):
        theta = 2 * math.pi * k / 12
        scale = rng.uniform(0.75, 1.0)
        x = min(max(cx + rx * scale * math.cos(theta), 0.0), WIDTH - 1.0)
        y = min(max(cy + ry * scale * math.sin(theta), 0.0), HEIGHT - 1.0)
        points += [round(x, 2), round(y, 2)]
    return points


def make_ground_truth(num_images: int, seed: int = 0) -> dict:
    """A COCO instances dict: ``num_images`` images with 1-15 polygon objects each."""
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(seed)
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        images.append({"id": image_id, "file_name": f"{image_id:012d}.jpg", "width": WIDTH, "height": HEIGHT})
        for _ in range(int(rng.integers(1, 16))):
            rx, ry = rng.uniform(6, 120), rng.uniform(6, 120)
            cx, cy = rng.uniform(rx, WIDTH - rx), rng.uniform(ry, HEIGHT - ry)
            crowd = rng.random() < 0.01
            polygon = _polygon(rng, cx, cy, rx, ry)
            rle = mask_utils.merge(mask_utils.frPyObjects([polygon], HEIGHT, WIDTH))
            segmentation = (
                {"size": [HEIGHT, WIDTH], "counts": _uncompressed_counts(mask_utils.decode(rle))}
                if crowd
                else [polygon]
            )
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(rng.integers(1, NUM_CATEGORIES + 1)),
                    "segmentation": segmentation,
                    "area": float(mask_utils.area(rle)),
                    "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                    "iscrowd": int(crowd),
                }
            )
    categories = [{"id": i, "name": f"class_{i}", "supercategory": "thing"} for i in range(1, NUM_CATEGORIES + 1)]
    return {"images": images, "annotations": annotations, "categories": categories}


def _uncompressed_counts(mask: np.ndarray) -> list[int]:
    flat = mask.flatten(order="F")
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    counts = np.diff(bounds).tolist()
    return [0] + counts if flat[0] else counts


def make_predictions(ground_truth: dict, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(bbox results, segm results) in COCO result format, the same detections in both."""
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(seed + 1)
    detections: list[tuple[int, int, list[float], float]] = []
    for ann in ground_truth["annotations"]:
        if ann["iscrowd"] or rng.random() < 0.1:
            continue
        x, y, w, h = ann["bbox"]
        shift = rng.normal(0, 0.08, 2) * (w, h)
        scale = rng.uniform(0.85, 1.15, 2)
        polygon = _polygon(rng, x + w / 2 + shift[0], y + h / 2 + shift[1], w / 2 * scale[0], h / 2 * scale[1])
        category = ann["category_id"] if rng.random() < 0.9 else int(rng.integers(1, NUM_CATEGORIES + 1))
        detections.append((ann["image_id"], category, polygon, float(rng.uniform(0.3, 1.0))))
    for image in ground_truth["images"]:
        for _ in range(int(rng.integers(10, 50))):
            rx, ry = rng.uniform(5, 80), rng.uniform(5, 80)
            polygon = _polygon(rng, rng.uniform(rx, WIDTH - rx), rng.uniform(ry, HEIGHT - ry), rx, ry)
            detections.append((image["id"], int(rng.integers(1, NUM_CATEGORIES + 1)), polygon, float(rng.uniform(0.05, 0.6))))
    bbox_results, segm_results = [], []
    for image_id, category, polygon, score in detections:
        rle = mask_utils.merge(mask_utils.frPyObjects([polygon], HEIGHT, WIDTH))
        box = [round(float(v), 2) for v in mask_utils.toBbox(rle)]
        counts = rle["counts"].decode("ascii") if isinstance(rle["counts"], bytes) else rle["counts"]
        bbox_results.append({"image_id": image_id, "category_id": category, "bbox": box, "score": score})
        segm_results.append(
            {"image_id": image_id, "category_id": category, "segmentation": {"size": rle["size"], "counts": counts}, "score": score}
        )
    return bbox_results, segm_results


def load_coco(ground_truth: dict):
    """A pycocotools ``COCO`` built from a dict, without its progress prints."""
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(ground_truth)
        coco.createIndex()
    return coco


def evaluate(
    backend: str, ground_truth: dict, results: list[dict], iou_type: str, iou_workers: int = 1
) -> tuple[np.ndarray, float]:
    """The 12 summary stats and the seconds taken by evaluate + accumulate + summarize."""
    from pycocotools.cocoeval import COCOeval

    from mae_transfer.integrations.coco_metric import faster_cocoeval

    coco_gt = load_coco(ground_truth)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        evaluator = COCOeval(coco_gt, coco_dt, iou_type) if backend == "pycocotools" else faster_cocoeval(coco_gt, coco_dt, iou_type, iou_workers)
        start = time.perf_counter()
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
        seconds = time.perf_counter() - start
    return np.asarray(evaluator.stats[:12], dtype=np.float64), seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-speedup", type=float, default=5.0)
    parser.add_argument(
        "--iou-workers", type=int, default=1, help="MAETransferFastCocoMetric's iou_workers (mask IoU threads)"
    )
    parser.add_argument("--json", type=Path, help="also write the table as JSON here")
    args = parser.parse_args(argv)

    ground_truth = make_ground_truth(args.images, args.seed)
    bbox_results, segm_results = make_predictions(ground_truth, args.seed)
    print(
        f"{args.images} images, {len(ground_truth['annotations'])} ground-truth objects, "
        f"{len(bbox_results)} detections (bbox and segm)"
    )
    rows, ok = [], True
    for iou_type, results in (("bbox", bbox_results), ("segm", segm_results)):
        reference, slow = evaluate("pycocotools", ground_truth, results, iou_type)
        fast_stats, fast = evaluate("faster-coco-eval", ground_truth, results, iou_type, args.iou_workers)
        diff = float(np.abs(reference - fast_stats).max())
        rows.append({"iou_type": iou_type, "pycocotools_s": slow, "faster_s": fast, "speedup": slow / fast,
                     "max_stat_diff": diff, "AP": float(reference[0])})
        ok &= diff <= 1e-4 and slow / fast >= args.min_speedup
    print(f"{'type':<6}{'pycocotools s':>15}{'faster-coco-eval s':>20}{'speed-up':>10}{'max |stat diff|':>17}{'AP':>8}")
    for row in rows:
        print(f"{row['iou_type']:<6}{row['pycocotools_s']:>15.2f}{row['faster_s']:>20.2f}{row['speedup']:>9.1f}x"
              f"{row['max_stat_diff']:>17.2e}{row['AP']:>8.3f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    print("PASS" if ok else f"FAIL: need max |stat diff| <= 1e-4 and speed-up >= {args.min_speedup}x")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    sys.exit(main())
