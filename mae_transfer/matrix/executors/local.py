"""Local and torchrun executors: each cell trains in its own process, up to N at a time.

Worker threads only wait on the training processes; one cell's failure is recorded in its state
file and never stops the others.
"""

from __future__ import annotations

import logging
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from mae_transfer.matrix.cell import run_cell
from mae_transfer.matrix.planner import Cell
from mae_transfer.matrix.state import mark_finished

logger = logging.getLogger(__name__)


def processes_for(cell: Cell, torchrun: bool, nproc_per_node: int | None) -> int:
    """Processes per cell: ``--nproc-per-node`` if given, else the cell's GPUs (at least 1)."""
    if not torchrun:
        return 1
    return max(1, nproc_per_node or cell.resources.gpus_per_cell)


def run_local(cells: list[Cell], max_parallel: int, summary, torchrun: bool = False,
              nproc_per_node: int | None = None) -> None:
    """Run ``cells`` on this machine, ``max_parallel`` at a time; fills ``summary``."""

    def one(cell: Cell) -> bool:
        nproc = processes_for(cell, torchrun, nproc_per_node)
        launcher = "pytorch" if torchrun else "none"
        logger.info("cell %s: starting (%s, %d process%s)", cell.label, launcher, nproc, "es" if nproc > 1 else "")
        try:
            return run_cell(Path(cell.work_dir), launcher=launcher, nproc=nproc)
        except Exception:  # noqa: BLE001 - a broken cell must not stop the matrix
            logger.exception("cell %s: the cell runner raised", cell.label)
            mark_finished(Path(cell.work_dir), ok=False, error_tail=traceback.format_exc(limit=5))
            return False

    with ThreadPoolExecutor(max_workers=max(1, max_parallel)) as pool:
        futures = {pool.submit(one, cell): cell for cell in cells}
        for future in as_completed(futures):
            cell = futures[future]
            ok = future.result()
            (summary.succeeded if ok else summary.failed).append(cell.label)
            logger.info("cell %s: %s", cell.label, "done" if ok else "FAILED (see its log.txt and state.json)")
