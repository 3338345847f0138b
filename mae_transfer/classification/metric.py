"""Top-1 / top-5 accuracy in percent for mmengine's evaluator.

Logged as ``accuracy/top1`` and ``accuracy/top5`` (the keys MMPretrain uses), in percent like
the paper's Table 6. Only the rank of the true class within the top 5 is kept per sample, so
memory stays small for iNaturalist's 5,089-8,142 classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from mmengine.evaluator import BaseMetric


def topk_hits(pred_topk: torch.Tensor, gt_label: torch.Tensor | int, topk: Sequence[int]) -> list[bool]:
    """For one sample: whether ``gt_label`` is among the first k predictions, for each k."""
    ranked = [int(value) for value in torch.as_tensor(pred_topk).flatten().tolist()]
    label = int(gt_label)
    return [label in ranked[:k] for k in topk]


class TopKAccuracy(BaseMetric):
    """Top-k accuracy in percent over the model's ``predict`` outputs.

    Args:
        topk: the ks to report; each must be at most 5 (what the model ranks).
        collect_device: ``cpu`` or ``gpu`` for gathering results across ranks.
        prefix: metric key prefix (default ``accuracy``).
    """

    default_prefix = "accuracy"

    def __init__(self, topk: Sequence[int] = (1, 5), collect_device: str = "cpu", prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.topk = tuple(int(k) for k in topk)
        if not self.topk or any(not 1 <= k <= 5 for k in self.topk):
            raise ValueError(f"val_evaluator.topk: expected values in 1..5, got {topk}")

    def process(self, data_batch: Any, data_samples: Sequence[dict[str, Any]]) -> None:
        """Keep, per sample, whether the label is in the top k for each k."""
        for sample in data_samples:
            if "gt_label" not in sample:
                raise KeyError("TopKAccuracy: a prediction has no 'gt_label'; the dataloader must yield labels")
            # with fewer than k classes the model ranks all of them, so top-k is a hit
            self.results.append(topk_hits(sample["pred_topk"], sample["gt_label"], self.topk))

    def compute_metrics(self, results: list[list[bool]]) -> dict[str, float]:
        """Percent of samples hit, per k."""
        if not results:
            raise ValueError("TopKAccuracy: no predictions to evaluate (empty validation set?)")
        totals = torch.tensor(results, dtype=torch.float64).mean(dim=0) * 100.0
        return {f"top{k}": float(totals[index]) for index, k in enumerate(self.topk)}
