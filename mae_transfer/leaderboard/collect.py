"""Collect the outcome of every planned cell: its result, or why there is none.

A corrupt ``result.json`` is reported (file and reason) and its cell counted as failed; it never
stops the leaderboard. ``include_unplanned`` also reads every other cell directory's result under
the work root (cells the current matrix no longer plans, e.g. after a config edit).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mae_transfer.matrix.plan.planner import Cell, Plan, cells_dir
from mae_transfer.matrix.run.result import ResultError, read_json, validate_result
from mae_transfer.matrix.run.files import CELL_NAME, RESULT_NAME
from mae_transfer.matrix.run.state import describe

NOT_PLANNED = "not planned"


@dataclass
class CellOutcome:
    """A cell and what became of it: done (with result), failed, blocked, running, interrupted or missing.

    ``error`` is the reason of a failed cell (the last line of its log tail) or of a blocked one
    (it waits on a pre-training cell that failed).

    ``planned`` is False for a result found under the work root whose cell the current plan does
    not hold; the leaderboard gives it a row of its own.
    """

    cell: Cell
    status: str
    result: dict[str, Any] | None = None
    error: str = ""
    planned: bool = True


@dataclass
class Collection:
    """Every planned cell's outcome, and the result files that could not be read."""

    outcomes: list[CellOutcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


# what a cell without a result shows, by its state (`mae_transfer.matrix.run.state.describe`)
_SHOWN = {"pending": "missing", "done": "missing", "submitted": "running", "running": "running",
          "interrupted": "interrupted", "failed": "failed", "blocked": "blocked"}


def collect(plan: Plan, include_unplanned: bool = False) -> Collection:
    """Read ``result.json`` (or the state) of every cell of ``plan``, and with ``include_unplanned``
    every finished cell directory under the work root that the plan does not hold."""
    collection = Collection()
    for cell in plan.cells:
        cell_dir = Path(cell.work_dir)
        path = cell_dir / RESULT_NAME
        try:
            result = validate_result(path, cell.id)
        except ResultError as error:
            if path.exists():
                collection.problems.append(str(error))
                collection.outcomes.append(CellOutcome(cell, "failed", error=f"corrupt {RESULT_NAME}"))
            else:
                state, reason = describe(cell_dir)
                collection.outcomes.append(CellOutcome(cell, _SHOWN[state], error=reason))
            continue
        collection.outcomes.append(CellOutcome(cell, "done", result=result))
    if include_unplanned:
        _collect_unplanned(plan, collection)
    return collection


def _collect_unplanned(plan: Plan, collection: Collection) -> None:
    """Results under the work root of cells the plan does not hold (their ``cell.json`` says what they were)."""
    planned = {Path(cell.work_dir).resolve() for cell in plan.cells}
    root = cells_dir(plan.spec.work_root)
    if not root.is_dir():
        return
    for cell_dir in sorted(path for path in root.iterdir() if path.is_dir() and path.resolve() not in planned):
        path = cell_dir / RESULT_NAME
        if not path.is_file():
            continue
        try:
            cell = Cell.from_json(read_json(cell_dir / CELL_NAME))
            result = validate_result(path, cell.id)
        except (ResultError, TypeError, KeyError) as error:
            collection.problems.append(f"{cell_dir}: unplanned result not read: {error}")
            continue
        collection.outcomes.append(CellOutcome(cell, "done", result=result, planned=False))
