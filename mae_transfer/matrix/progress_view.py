"""Live progress of `mae-transfer run`: a table of its cells, and one line per finished cell.

:class:`ProgressView` polls each cell's ``state.json``, ``train/progress.json`` (the trainer's
structured progress record, `mae_transfer.records`) and ``result.json`` in a background thread.
On a terminal it renders a rich ``Live`` table to stderr (cell, state, step/total, the task's
main metric so far, ETA, attempts); elsewhere (CI, a log file, ``| tee``) it prints plain lines
only. Either way, each cell that reaches done, failed or blocked while the view runs gets one
summary line. The view never breaks a run: an error in it is logged once and the view stops.

Reads files only (no mm* import); the cells are the planner's.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, Iterable, Iterator, Sequence

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from mae_transfer.matrix.plan.planner import Cell
from mae_transfer.matrix.run.result import ResultError, leaderboard_metrics
from mae_transfer.matrix.run.files import RESULT_NAME
from mae_transfer.matrix.run.state import status
from mae_transfer.matrix.spec.tasks import TASKS
from mae_transfer.records import read_json, read_progress_record

logger = logging.getLogger(__name__)

FINISHED = ("done", "failed", "blocked")
_COLOURS = {"done": "green", "failed": "red", "blocked": "magenta", "running": "cyan", "interrupted": "yellow",
            "submitted": "blue", "pending": "white"}
# states whose progress record belongs to the current (or last) attempt
_WITH_PROGRESS = ("running", "interrupted", "failed", "done")


@dataclass(frozen=True)
class CellView:
    """What the view shows of one cell at one moment."""

    label: str
    state: str
    attempts: int
    step: int | None = None
    total: int | None = None
    metric: tuple[str, float] | None = None  # (name, percent): the task's main metric so far
    eta_seconds: float | None = None
    elapsed_seconds: float | None = None  # of the latest attempt, once it finished
    error_line: str = ""
    finished_at: float | None = None

    @property
    def percent(self) -> float | None:
        return 100.0 * self.step / self.total if self.step is not None and self.total else None


def main_metric(task: str, metrics: dict[str, float]) -> tuple[str, float] | None:
    """The task's first leaderboard metric found in ``metrics`` (raw keys or leaderboard names).

    Falls back to the first numeric entry when none of the task's names match (or the task has
    no leaderboard profile); None when there is nothing numeric.
    """
    numeric = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    profile = TASKS.get(task)
    if profile is not None:
        named = next(((name, numeric[name]) for name in profile.metrics if name in numeric), None)
        if named is not None:
            return named
        try:
            return next(iter(leaderboard_metrics(task, numeric, "progress").items()))
        except ResultError:
            pass
    return next(iter(numeric.items()), None)


def format_duration(seconds: float | None) -> str:
    """``h:mm:ss`` ("" for None)."""
    if seconds is None:
        return ""
    whole = max(0, round(seconds))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def snapshot(cell: Cell, now: float | None = None) -> CellView:
    """The cell as its files describe it now."""
    now = time.time() if now is None else now
    cell_dir = Path(cell.work_dir)
    current = status(cell_dir, validate=False)  # polled often: a recorded done is taken as done
    state, shown = current.recorded, current.state
    view = {"label": cell.label, "state": shown, "attempts": state.attempts}
    record = read_progress_record(cell_dir / "train") if shown in _WITH_PROGRESS else None
    if record is not None:
        view.update(step=record.step, total=record.total, metric=main_metric(cell.task, record.latest))
        if shown == "running" and record.eta_seconds is not None:
            view["eta_seconds"] = max(0.0, record.eta_seconds - max(0.0, now - record.time))
    if shown == "done":
        result = read_json(cell_dir / RESULT_NAME)
        metrics = result.get("metrics") if isinstance(result, dict) else None
        if isinstance(metrics, dict):
            view["metric"] = main_metric(cell.task, metrics) or view.get("metric")
    if shown in FINISHED:
        if state.started is not None and state.finished is not None:
            view["elapsed_seconds"] = state.finished - state.started
        lines = state.error_tail.strip().splitlines()
        view.update(error_line=lines[-1].strip() if lines else "", finished_at=state.finished)
    return CellView(**view)


@dataclass(frozen=True)
class Progress:
    """Where a training run stands, from its ``progress.json`` record."""

    text: str
    fraction: float | None
    eta: str | None


def read_progress(cell_dir: Path) -> Progress:
    """Progress and ETA of the cell's training, from the trainer's structured progress record."""
    record = read_progress_record(cell_dir / "train")
    if record is None:
        return Progress("", None, None)
    total = f"/{record.total}" if record.total else ""
    text = f"iter {record.step}{total}" + (f" (epoch {record.epoch})" if record.epoch else "")
    fraction = record.step / record.total if record.total else None
    eta = None if record.eta_seconds is None else str(timedelta(seconds=round(record.eta_seconds)))
    return Progress(text, fraction, eta)


def _progress_text(view: CellView) -> str:
    if view.step is None:
        return ""
    if not view.total:
        return str(view.step)
    return f"{view.step}/{view.total} ({view.percent:.0f}%)"


def _metric_text(view: CellView) -> str:
    return f"{view.metric[0]} {view.metric[1]:.2f}" if view.metric else ""


def render(views: Sequence[CellView], title: str = "") -> Table:
    """The live table: one row per cell."""
    counts = {s: sum(v.state == s for v in views) for s in _COLOURS}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    table = Table(title=f"{title}: {summary}" if title else summary)
    # minimum widths keep the columns from jumping as the numbers grow
    widths = {"cell": None, "state": None, "step": 12, "metric": 11, "ETA": 7, "attempts": None}
    for column, width in widths.items():
        table.add_column(column, overflow="fold", min_width=width,
                         justify="right" if column in ("ETA", "attempts") else "left")
    for view in views:
        # Text, not markup strings: a summary line printed with markup off redraws the table too
        table.add_row(Text(view.label), Text(view.state, style=_COLOURS.get(view.state, "white")),
                      Text(_progress_text(view)), Text(_metric_text(view)), Text(format_duration(view.eta_seconds)),
                      Text(str(view.attempts)))
    return table


def summary_line(view: CellView) -> str:
    """One line for a finished cell: ``done  LABEL  top1 37.50  412 s`` or ``FAILED  LABEL  <last error line>``."""
    word = "done" if view.state == "done" else view.state.upper()
    parts = [f"{word:<7}", view.label]
    if view.state == "done":
        parts.append(_metric_text(view))
    if view.elapsed_seconds is not None:
        parts.append(f"{view.elapsed_seconds:.0f} s")
    if view.state != "done":
        parts.append(view.error_line)
    return "  ".join(part for part in parts if part)


def progress_line(view: CellView) -> str:
    """One plain line for a running cell (logs without a terminal)."""
    parts = ["running", view.label, _progress_text(view), _metric_text(view),
             f"ETA {format_duration(view.eta_seconds)}" if view.eta_seconds is not None else ""]
    return "  ".join(part for part in parts if part)


def watched_cells(cells: Iterable[Cell]) -> list[Cell]:
    """The cells a run may still change: every one not recorded done."""
    return [cell for cell in cells if status(Path(cell.work_dir), validate=False).state != "done"]


class ProgressView:
    """Polls ``cells`` every ``interval`` seconds while a run executes (a context manager).

    Args:
        cells: the cells to show (`watched_cells` of the plan).
        title: the table's title (the matrix name).
        stream: where to draw (stderr).
        live: draw a live table; default: when ``stream`` is a terminal. Without it only plain
            lines are printed: the summary lines, and every ``plain_every`` seconds one line per
            running cell whose step moved.
    """

    def __init__(self, cells: Sequence[Cell], title: str = "", stream: IO[str] | None = None,
                 interval: float = 1.0, live: bool | None = None, plain_every: float = 300.0) -> None:
        stream = sys.stderr if stream is None else stream
        self.cells = list(cells)
        self.title = title
        self.interval = interval
        self.plain_every = plain_every
        self.live = _isatty(stream) if live is None else live
        self.console = Console(file=stream, force_terminal=self.live or None, highlight=False)
        # a cell's (state, finished) at the start: a summary is printed only when it changes
        self._initial = {cell.id: self._signature(snapshot(cell)) for cell in self.cells}
        self._printed: set[str] = set()
        self._plain_steps: dict[str, int | None] = {}
        self._last_plain = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live: Live | None = None
        self._failed = False
        self._lock = threading.Lock()

    @staticmethod
    def _signature(view: CellView) -> tuple[str, float | None]:
        return view.state, view.finished_at

    def poll(self) -> list[CellView]:
        """Read every cell, print the summary lines of newly finished ones, redraw; returns the views."""
        with self._lock:
            views = [snapshot(cell) for cell in self.cells]
            for cell, view in zip(self.cells, views):
                if (view.state in FINISHED and cell.id not in self._printed
                        and self._signature(view) != self._initial[cell.id]):
                    self._printed.add(cell.id)
                    self.console.print(summary_line(view), markup=False, highlight=False, soft_wrap=True)
            if self._live is not None:
                self._live.update(render(views, self.title))
            elif time.monotonic() - self._last_plain >= self.plain_every:
                self._print_plain_progress(views)
            return views

    def _print_plain_progress(self, views: list[CellView]) -> None:
        self._last_plain = time.monotonic()
        for view in views:
            if view.state == "running" and self._plain_steps.get(view.label) != view.step:
                self._plain_steps[view.label] = view.step
                self.console.print(progress_line(view), markup=False, highlight=False, soft_wrap=True)

    def start(self) -> "ProgressView":
        """Start drawing and polling (in a daemon thread)."""
        if self.live:
            self._live = Live(render([snapshot(c) for c in self.cells], self.title), console=self.console,
                              refresh_per_second=4, transient=False)
            self._live.start()
        self._thread = threading.Thread(target=self._loop, name="progress-view", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            if not self._guarded(self.poll):
                return

    def _guarded(self, action) -> bool:
        """Run ``action``; on any error log it once, stop the view and return False."""
        if self._failed:
            return False
        try:
            action()
            return True
        except Exception:  # noqa: BLE001 - the view must never break a run
            self._failed = True
            logger.warning("progress view stopped after an error (the run goes on)", exc_info=True)
            self._stop_live()
            return False

    def _stop_live(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            try:
                live.stop()
            except Exception:  # noqa: BLE001
                pass

    def stop(self) -> None:
        """Stop polling; final render and the summary lines not printed yet (unless the view failed)."""
        self._stop.set()
        try:
            if self._thread is not None and self._thread is not threading.current_thread():
                self._thread.join(timeout=max(5.0, 2 * self.interval))
            self._guarded(self.poll)
        finally:  # a second Ctrl-C here still gives the terminal back
            self._stop_live()

    def __enter__(self) -> "ProgressView":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@contextmanager
def show_progress(cells: Sequence[Cell], title: str = "", enabled: bool = True) -> Iterator[ProgressView | None]:
    """Show a :class:`ProgressView` of ``cells`` on stderr for the duration of the block.

    While the live table is drawn, the root logger's stderr handlers write through rich (their
    lines appear above the table instead of tearing it). Disabled, or nothing to show: a no-op.
    """
    if not enabled or not cells:
        yield None
        return
    try:
        view = ProgressView(cells, title=title).start()
    except Exception:  # noqa: BLE001 - the view must never break a run
        logger.warning("progress view could not start (the run goes on)", exc_info=True)
        yield None
        return
    with _logging_through(view):
        try:
            yield view
        finally:
            view.stop()


@contextmanager
def _logging_through(view: ProgressView) -> Iterator[None]:
    """Point the root logger's stderr handlers at the live console's stderr proxy, then back."""
    moved = []
    if view.live and sys.stderr is not sys.__stderr__:  # Live.start replaced sys.stderr with its proxy
        for handler in logging.getLogger().handlers:
            if type(handler) is logging.StreamHandler and handler.stream is sys.__stderr__:
                moved.append((handler, handler.setStream(sys.stderr)))
    try:
        yield
    finally:
        for handler, stream in moved:
            handler.setStream(stream)
