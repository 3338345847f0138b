"""What every task's integration shares: safe checkpoint loading for resume, the layer-decay
optimizer constructor, and the hook that records a run's final metrics.

mmengine 0.10.7 reads its own checkpoints with a bare ``torch.load``; since torch 2.6 that means
``weights_only=True``, which refuses the few non-tensor objects mmengine stores (its message
hub's ``HistoryBuffer`` and numpy arrays/scalars inside it). We allow-list exactly those types
with ``torch.serialization.add_safe_globals``; ``weights_only`` stays on for every checkpoint.
A pickled ``HistoryBuffer`` also names its statistics methods through ``getattr``; instead of
allowing ``getattr`` itself, a stand-in resolves only those methods and refuses anything else.
"""

from __future__ import annotations

import logging
import pickle

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.registry import HOOKS

from mae_transfer.integrations import optim_constructor  # noqa: F401  (registers the constructor)

logger = logging.getLogger(__name__)


def _numpy_globals() -> list:
    """The numpy reconstructors and types that pickled arrays and scalars reference."""
    multiarray = getattr(np, "_core", None) or np.core
    names = [multiarray.multiarray._reconstruct, multiarray.multiarray.scalar, np.ndarray, np.dtype]
    names += [type(np.dtype(kind)) for kind in ("float64", "float32", "float16", "int64", "int32", "bool")]
    return names


def history_buffer_statistic(owner: object, name: str):
    """``getattr`` as seen by checkpoint unpickling: only ``HistoryBuffer`` statistics resolve."""
    # mmengine fills _statistics_methods lazily (first HistoryBuffer()), so name the defaults too
    if owner is HistoryBuffer and name in {"min", "max", "mean", "current", *HistoryBuffer._statistics_methods}:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f"checkpoint asks for getattr({owner!r}, {name!r}); only HistoryBuffer statistics methods are allowed"
    )


MMENGINE_CHECKPOINT_GLOBALS = [HistoryBuffer, *_numpy_globals(), (history_buffer_statistic, "builtins.getattr")]


def allow_mmengine_checkpoint_globals() -> None:
    """Let ``torch.load(weights_only=True)`` read mmengine's own training checkpoints."""
    torch.serialization.add_safe_globals(MMENGINE_CHECKPOINT_GLOBALS)


allow_mmengine_checkpoint_globals()


@HOOKS.register_module()
class MAETransferFinalMetricsHook(Hook):
    """Remembers the metrics of the latest validation run, for ``tools/train.py`` to save."""

    priority = "VERY_LOW"

    def __init__(self) -> None:
        self.latest: dict | None = None
        self.latest_iter = -1

    def after_val_epoch(self, runner, metrics: dict | None = None) -> None:
        self.latest = dict(metrics or {})
        self.latest_iter = runner.iter
