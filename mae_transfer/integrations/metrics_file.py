"""Final evaluation metrics of a run, in percent, written atomically to ``metrics.json``.

mmdet's CocoMetric logs fractions (``coco/bbox_mAP`` = 0.516) while mmseg's IoUMetric and our
classification metric log percent; the leaderboard reads one scale, percent.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

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


def write_json_atomic(path: str | Path, payload: Mapping[str, Any] | list[Any]) -> Path:
    """Write JSON through a temporary file and ``os.replace``: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(payload, stream, indent=2, sort_keys=True)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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
    return write_json_atomic(path, payload)
