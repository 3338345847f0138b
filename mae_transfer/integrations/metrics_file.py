"""Final evaluation metrics of a run, in percent, written atomically to ``metrics.json``.

mmdet's CocoMetric logs fractions (``coco/bbox_mAP`` = 0.516) while mmseg's IoUMetric and our
classification metric log percent; the leaderboard reads one scale, percent. This is the one
conversion table: ``metrics.json``, ``test_metrics.json`` and every validation record use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from mae_transfer.records import atomic_write_json

# Metric-name prefixes logged as fractions in [0, 1].
FRACTION_PREFIXES = ("coco/",)


def numeric_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The numeric entries of a metrics dict as floats (tensors and numpy scalars included)."""
    numeric = {}
    for name, value in metrics.items():
        if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
            value = value.item()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            numeric[name] = float(value)
    return numeric


def to_percent(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Numeric metrics on the percent scale; non-numeric entries are left out.

    COCO writes -1 for a stat it cannot define (no ground truth in that area range); such
    entries are left out too (``raw`` keeps them), not turned into -100.
    """
    percent = {}
    for name, value in numeric_metrics(metrics).items():
        if name.startswith(FRACTION_PREFIXES):
            if value < 0:
                continue
            value *= 100.0
        percent[name] = value
    return percent


def write_metrics_file(
    path: str | Path, metrics: Mapping[str, Any], *, iteration: int, epoch: int, checkpoint: str, **extra: Any
) -> Path:
    """Write ``{"metrics": percent, "raw": as logged, ...}`` to ``path`` atomically."""
    payload = {
        "metrics": to_percent(metrics),
        "raw": numeric_metrics(metrics),
        "iteration": iteration,
        "epoch": epoch,
        "checkpoint": checkpoint,
        **extra,
    }
    return atomic_write_json(path, payload)
