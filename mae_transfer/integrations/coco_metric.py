"""An opt-in faster-coco-eval backend for mmdet's ``CocoMetric``.

``MAETransferFastCocoMetric`` is mmdet's ``CocoMetric`` in every respect (ground truth loading, result
conversion, ``loadRes``, parameters, metric names and the fraction scale it logs) except the
COCOeval class: ``faster_coco_eval.COCOeval_faster`` (C++ matching and accumulation) replaces
``pycocotools.cocoeval.COCOeval``. Its 12 summary stats equal pycocotools' (checked in
tests/detection/test_coco_metric.py); speed: benchmarks/speed/coco_eval.py.

Use it by changing only the evaluator type::

    val_evaluator = dict(type="MAETransferFastCocoMetric", ann_file=..., metric=["bbox", "segm"])
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator
from typing import Any

import mmdet.evaluation.metrics.coco_metric as mmdet_coco_metric
from mmdet.evaluation.metrics import CocoMetric
from mmdet.registry import METRICS

__all__ = ["MAETransferFastCocoMetric", "faster_cocoeval"]

logger = logging.getLogger(__name__)


def faster_cocoeval(coco_gt: Any, coco_dt: Any, iou_type: str, iou_workers: int = 1) -> Any:
    """A ``COCOeval_faster`` with pycocotools' constructor signature (gt, dt, iou type).

    ``iou_workers`` threads compute the mask IoUs (faster-coco-eval's default is 8). One is the
    default: per image/category pair the work is small, and on 2 cores the thread pool made segm
    evaluation of 1,000 generated images 1.5x slower (1.70 s vs 1.15 s,
    benchmarks/speed/coco_eval.py data). Raise it for large masks on many cores.
    """
    from faster_coco_eval import COCOeval_faster

    return COCOeval_faster(
        coco_gt, coco_dt, iou_type, print_function=logger.debug, rle_iou_max_workers=iou_workers
    )


@contextlib.contextmanager
def _cocoeval_backend(factory: Any) -> Iterator[None]:
    """Make mmdet's coco_metric module construct its COCOeval through ``factory`` meanwhile.

    ``CocoMetric.compute_metrics`` looks the class up as a module global when it evaluates;
    rebinding that one name for the duration of the call swaps the evaluation backend and
    leaves every other step of the metric untouched.
    """
    original = mmdet_coco_metric.COCOeval
    mmdet_coco_metric.COCOeval = factory
    try:
        yield
    finally:
        mmdet_coco_metric.COCOeval = original


@METRICS.register_module()
class MAETransferFastCocoMetric(CocoMetric):
    """mmdet's ``CocoMetric`` evaluated with faster-coco-eval instead of pycocotools.

    Takes ``CocoMetric``'s arguments plus ``iou_workers`` (threads for mask IoUs, see
    :func:`faster_cocoeval`); ``use_mp_eval`` (mmdet's multi-process pycocotools variant) is
    refused because the two backends are alternatives.
    """

    def __init__(self, *args: Any, iou_workers: int = 1, **kwargs: Any) -> None:
        if kwargs.get("use_mp_eval"):
            raise ValueError(
                "MAETransferFastCocoMetric: use_mp_eval selects mmdet's pycocotools backend; drop it or use CocoMetric"
            )
        if isinstance(iou_workers, bool) or not isinstance(iou_workers, int) or iou_workers < 1:
            raise ValueError(f"MAETransferFastCocoMetric: iou_workers must be a positive integer, got {iou_workers!r}")
        super().__init__(*args, **kwargs)
        self.iou_workers = iou_workers

    def compute_metrics(self, results: list) -> dict[str, float]:
        """Same as ``CocoMetric.compute_metrics``, evaluated by ``COCOeval_faster``."""
        with _cocoeval_backend(functools.partial(faster_cocoeval, iou_workers=self.iou_workers)):
            return super().compute_metrics(results)
