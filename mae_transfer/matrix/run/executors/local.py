"""Local and torchrun executors: each cell trains in its own process, up to N at a time.

Worker threads only wait on the training processes; one cell's failure is recorded in its state
file and never stops the others.
"""

from __future__ import annotations

import logging
import signal
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import mae_transfer.matrix.run.cell as cell_module
from mae_transfer.matrix.run.cell import run_cell
from mae_transfer.matrix.plan.planner import Cell
from mae_transfer.matrix.run.state import CellBusy, mark_finished, status

logger = logging.getLogger(__name__)


def processes_for(cell: Cell, torchrun: bool, nproc_per_node: int | None) -> int:
    """Processes per cell: ``--nproc-per-node`` if given, else the cell's GPUs (at least 1)."""
    if not torchrun:
        return 1
    return max(1, nproc_per_node or cell.resources.gpus_per_cell)


def run_local(cells: list[Cell], max_parallel: int, summary, torchrun: bool = False,
              nproc_per_node: int | None = None) -> None:
    """Run ``cells`` on this machine, ``max_parallel`` at a time; fills ``summary``.

    A cell whose lock another trainer holds is recorded in ``summary.running_elsewhere``.
    Ctrl-C (KeyboardInterrupt in this thread): the running trainings are stopped with SIGTERM and
    recorded interrupted (their attempts not counted), the cells not started yet stay pending,
    and KeyboardInterrupt is raised again once every worker has returned.
    """

    def one(cell: Cell) -> str:
        if cell_module.interrupted():
            return "not started"
        nproc = processes_for(cell, torchrun, nproc_per_node)
        launcher = "pytorch" if torchrun else "none"
        logger.info("cell %s: starting (%s, %d process%s)", cell.label, launcher, nproc, "es" if nproc > 1 else "")
        try:
            return "done" if run_cell(Path(cell.work_dir), launcher=launcher, nproc=nproc) else "failed"
        except CellBusy as error:
            logger.warning("cell %s: %s", cell.label, error)
            return "busy"
        except Exception:  # noqa: BLE001 - a broken cell must not stop the matrix
            logger.exception("cell %s: the cell runner raised", cell.label)
            mark_finished(Path(cell.work_dir), ok=False, error_tail=traceback.format_exc(limit=5))
            return "failed"

    pool = ThreadPoolExecutor(max_workers=max(1, max_parallel))
    futures = {pool.submit(one, cell): cell for cell in cells}
    interrupted = False
    pending = set(futures)
    while pending:
        try:
            for future in as_completed(pending):
                pending.discard(future)
                _record(futures[future], future.result(), summary)
        except KeyboardInterrupt:
            interrupted = True
            logger.warning("interrupted: stopping the running cells (they stay resumable)")
            cell_module._on_signal(signal.SIGINT, None)  # a no-op for the reason when SIGTERM came first
    pool.shutdown(wait=True, cancel_futures=True)
    if interrupted:
        raise KeyboardInterrupt


def _record(cell: Cell, outcome: str, summary) -> None:
    if outcome == "busy":
        summary.running_elsewhere.append(cell.label)
    elif outcome in ("done", "failed"):
        if outcome == "failed" and status(Path(cell.work_dir), cell.id).state == "interrupted":
            summary.interrupted.append(cell.label)
        else:
            (summary.succeeded if outcome == "done" else summary.failed).append(cell.label)
    logger.info("cell %s: %s", cell.label, {"done": "done", "failed": "FAILED (see its log.txt and state.json)",
                                            "busy": "another trainer holds it", "not started": "not started"}[outcome])
