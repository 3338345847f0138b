"""The hook that records a training run as structured data in its work dir (rank 0).

* every validation -> ``validations.json`` (step, epoch, metrics in percent, raw as logged);
* training progress -> ``progress.json``, at most every ``interval_s`` seconds and at the last
  iteration (step, total, epoch, time, ETA, the latest validation);
* the pretrained load's summary -> ``load_report.json``, when training starts.

The files are described in `mae_transfer.records`; the cell runner reads them instead of
parsing mmengine's text log or ``scalars.json``.
"""

from __future__ import annotations

import time

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from mae_transfer import records
from mae_transfer.integrations.metrics_file import numeric_metrics, to_percent


@HOOKS.register_module()
class MAETransferFinalMetricsHook(Hook):
    """Records validations, progress and the load report; remembers the latest validation.

    ``latest`` / ``latest_iter``: the metrics (as logged) of the latest validation and the
    iteration it followed, for ``tools/train.py`` to save as the final metrics.
    """

    priority = "VERY_LOW"

    def __init__(self, interval_s: float = 5.0) -> None:
        self.latest: dict | None = None
        self.latest_iter = -1
        self.interval_s = interval_s
        self._written = 0.0
        self._start: tuple[float, int] | None = None  # (time, iteration) this attempt started at
        self._latest_percent: dict[str, float] = {}

    def before_train(self, runner) -> None:
        self._start = (time.time(), runner.iter)
        if runner.rank != 0:
            return
        load = records.latest_load()
        if load is not None:
            records.write_load_report(runner.work_dir, load)
        self._write_progress(runner, runner.iter)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        step = runner.iter + 1  # runner.iter is incremented after this hook
        if runner.rank == 0 and (time.time() - self._written >= self.interval_s or step >= runner.max_iters):
            self._write_progress(runner, step)

    def after_val_epoch(self, runner, metrics: dict | None = None) -> None:
        self.latest = dict(metrics or {})
        self.latest_iter = runner.iter
        if runner.rank != 0:
            return
        self._latest_percent = to_percent(self.latest)
        records.record_validation(runner.work_dir, records.Validation(
            step=runner.iter, epoch=runner.epoch, metrics=self._latest_percent, raw=numeric_metrics(self.latest)))
        self._write_progress(runner, runner.iter)

    def _write_progress(self, runner, step: int) -> None:
        now = time.time()
        total = getattr(runner, "max_iters", None)
        eta = None
        if self._start is not None and total and step > self._start[1]:
            per_iter = (now - self._start[0]) / (step - self._start[1])
            eta = per_iter * max(total - step, 0)
        records.write_progress(runner.work_dir, records.ProgressRecord(
            step=step, total=total, epoch=runner.epoch, time=now, eta_seconds=eta, latest=self._latest_percent))
        self._written = now

