"""Collect the outcome of every planned cell: its result, or why there is none.

A corrupt ``result.json`` is reported (file and reason) and its cell counted as failed; it never
stops the leaderboard.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mae_transfer.matrix.planner import Cell, Plan
from mae_transfer.matrix.result import ResultError, validate_result
from mae_transfer.matrix.state import RESULT_NAME, STATE_NAME, read_state


@dataclass
class CellOutcome:
    """A planned cell and what became of it: done (with result), failed, running or missing."""

    cell: Cell
    status: str
    result: dict[str, Any] | None = None
    error: str = ""


@dataclass
class Collection:
    """Every planned cell's outcome, and the result files that could not be read."""

    outcomes: list[CellOutcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _state(cell_dir: Path) -> tuple[str, str]:
    if not (cell_dir / STATE_NAME).is_file():
        return "missing", ""
    state = read_state(cell_dir)
    if state.state == "failed":
        tail = state.error_tail.strip().splitlines()
        return "failed", tail[-1] if tail else ""
    if state.interrupted:
        # stopped (signal, dead process, stale heartbeat): not running, resumable by the next run
        return "interrupted", ""
    if state.state in ("running", "submitted"):
        return "running", ""
    return "missing", ""


def collect(plan: Plan) -> Collection:
    """Read ``result.json`` (or the state) of every cell of ``plan``."""
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
                status, message = _state(cell_dir)
                collection.outcomes.append(CellOutcome(cell, status, error=message))
            continue
        collection.outcomes.append(CellOutcome(cell, "done", result=result))
    return collection
