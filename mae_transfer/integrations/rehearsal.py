"""The measurements of a rehearsal run (``mae-transfer run MATRIX --rehearse``).

``tools/train.py --rehearsal`` adds :class:`MAETransferRehearsalHook` to the run; each rank
writes ``WORK_DIR/rehearsal_rank{RANK}.json`` with:

- ``step_seconds``: the time of each training iteration (forward, backward, optimizer step,
  DDP all-reduce; from ``before_train_iter`` to ``after_train_iter``) and ``iter_seconds``
  (the same plus data loading, between consecutive iteration ends);
- ``peak_memory_mib``: the process's peak resident memory (``ru_maxrss``) on CPU, or the peak
  allocated CUDA memory (``torch.cuda.max_memory_allocated``) on a GPU, over the whole run
  (model build, checkpoint load, training, evaluation);
- ``params`` / ``trainable_params`` of the model (DDP wrapper unwrapped);
- ``losses``: the logged loss values of every iteration and whether all were finite;
- ``evaluated``: whether a validation ran, with its seconds and metric names.

The file is rewritten after training, after each validation and at the end of the run, so a
run that fails in evaluation still leaves its training measurements.
"""

from __future__ import annotations

import math
import resource
import time
from pathlib import Path

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from mae_transfer.records import atomic_write_json

RECORD_PATTERN = "rehearsal_rank{rank}.json"


def peak_memory_mib() -> tuple[float, str]:
    """(peak memory in MiB, what was measured): CUDA allocations on a GPU, else the peak RSS."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda.max_memory_allocated() / 2**20, "cuda_max_memory_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, "ru_maxrss"  # KiB on Linux


def _loss_values(outputs: dict | None) -> dict[str, float]:
    values = {}
    for key, value in (outputs or {}).items():
        if "loss" in key:
            try:
                values[key] = float(value)
            except (TypeError, ValueError):
                continue
    return values


@HOOKS.register_module()
class MAETransferRehearsalHook(Hook):
    """Records step times, peak memory, parameter counts and losses of a rehearsal run."""

    priority = "VERY_LOW"

    def __init__(self) -> None:
        self.step_seconds: list[float] = []
        self.iter_seconds: list[float] = []
        self.losses: list[dict[str, float]] = []
        self.evaluations: list[dict] = []
        self._started = self._last_end = self._val_started = None

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._started = time.perf_counter()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        now = time.perf_counter()
        if self._started is not None:
            self.step_seconds.append(now - self._started)
        if self._last_end is not None:
            self.iter_seconds.append(now - self._last_end)
        self._last_end = now
        self.losses.append(_loss_values(outputs))

    def before_val_epoch(self, runner) -> None:
        self._val_started = time.perf_counter()

    def after_val_epoch(self, runner, metrics: dict | None = None) -> None:
        seconds = time.perf_counter() - self._val_started if self._val_started is not None else None
        self.evaluations.append({"seconds": seconds, "metrics": sorted(metrics or {})})
        self._write(runner)

    def after_train(self, runner) -> None:
        self._write(runner)

    def after_run(self, runner) -> None:
        self._write(runner)

    def _write(self, runner) -> None:
        model = getattr(runner.model, "module", runner.model)
        memory, measured = peak_memory_mib()
        finite = all(math.isfinite(v) for step in self.losses for v in step.values())
        atomic_write_json(Path(runner.work_dir) / RECORD_PATTERN.format(rank=runner.rank), {
            "rank": runner.rank,
            "world_size": runner.world_size,
            "device": "cuda" if torch.cuda.is_available() else "cpu",
            "iterations": len(self.step_seconds),
            "step_seconds": self.step_seconds,
            "iter_seconds": self.iter_seconds,
            "peak_memory_mib": memory,
            "memory_measure": measured,
            "params": sum(p.numel() for p in model.parameters()),
            "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "losses": self.losses,
            "losses_finite": finite and bool(self.losses),
            "evaluated": bool(self.evaluations),
            "evaluations": self.evaluations,
        })
