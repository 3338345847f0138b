"""The live view of `mae-transfer run`: its table and its one summary line per finished cell (no training)."""

from __future__ import annotations

import io
import logging
import time
from pathlib import Path

import pytest
from rich.console import Console

from matrix_helpers import matrix_text

from mae_transfer.matrix import progress_view
from mae_transfer.matrix.plan.planner import plan_matrix
from mae_transfer.matrix.progress_view import ProgressView, render, snapshot, summary_line, watched_cells
from mae_transfer.matrix.spec.matrix_spec import load_spec
from mae_transfer.matrix.run.state import mark_finished, mark_running
from mae_transfer.records import ProgressRecord, atomic_write_json, write_progress


def _cells(tmp_path: Path, seeds: int):
    (tmp_path / "m.yaml").write_text(matrix_text("  - {task: inat2017, recipe: smoke}", seeds=str(seeds)))
    return plan_matrix(load_spec(tmp_path / "m.yaml")).cells


def _progress(cell, step: int, total: int, eta: float | None, latest: dict[str, float], now: float) -> None:
    write_progress(Path(cell.work_dir) / "train", ProgressRecord(step=step, total=total, epoch=1, time=now,
                                                                 eta_seconds=eta, latest=latest))


def _finish_done(cell, top1: float) -> None:
    atomic_write_json(Path(cell.work_dir) / "result.json", {"metrics": {"top5": 90.0, "top1": top1}})
    mark_finished(Path(cell.work_dir), ok=True)


def test_table_shows_step_total_eta_and_main_metric(tmp_path: Path) -> None:
    running, done = _cells(tmp_path, seeds=2)
    now = time.time()
    mark_running(Path(running.work_dir), None)
    _progress(running, 40, 100, 5400.0, {"accuracy/top5": 60.0, "accuracy/top1": 12.5}, now)
    mark_running(Path(done.work_dir), None)
    _progress(done, 100, 100, 0.0, {"accuracy/top1": 30.0}, now)
    _finish_done(done, top1=37.5)

    console = Console(record=True, width=200)
    # markup=False: how Live redraws the table under a summary line printed as plain text
    console.print(render([snapshot(running, now=now + 30), snapshot(done, now=now)], title="t"), markup=False)
    text = console.export_text()
    assert "[" not in text  # no markup shown literally
    row = next(line for line in text.splitlines() if running.label in line)
    assert "running" in row and "40/100 (40%)" in row and "top1 12.50" in row and "1:29:30" in row
    row = next(line for line in text.splitlines() if done.label in line)
    assert "done" in row and "100/100 (100%)" in row and "top1 37.50" in row  # result.json's, not progress's
    assert "1 done, 1 running" in text


def test_plain_mode_prints_one_summary_line_per_cell_finished_during_the_run(tmp_path: Path) -> None:
    finishes, fails, finished_before = _cells(tmp_path, seeds=3)
    mark_running(Path(finished_before.work_dir), None)
    _finish_done(finished_before, top1=50.0)
    assert watched_cells([finishes, fails, finished_before]) == [finishes, fails]
    mark_running(Path(fails.work_dir), None)
    mark_finished(Path(fails.work_dir), ok=False, error_tail="an old failure")  # before the run: no line for it
    out = io.StringIO()
    with ProgressView([finishes, fails, finished_before], stream=out, interval=0.01, live=None) as view:
        assert not view.live  # a StringIO is not a terminal: no live table
        mark_running(Path(finishes.work_dir), None)
        _progress(finishes, 8, 8, 0.0, {"accuracy/top1": 20.0}, time.time())
        _finish_done(finishes, top1=37.5)
        deadline = time.time() + 5
        while finishes.label not in out.getvalue() and time.time() < deadline:
            time.sleep(0.01)
        mark_running(Path(fails.work_dir), None)
        error = "Traceback (most recent call last):\nValueError: bad lr\n"
        mark_finished(Path(fails.work_dir), ok=False, error_tail=error)
        time.sleep(0.05)  # several polls see both cells finished
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("done") and finishes.label in lines[0] and "top1 37.50" in lines[0]
    assert lines[1].startswith("FAILED") and lines[1].endswith("ValueError: bad lr") and fails.label in lines[1]
    assert "\x1b[" not in out.getvalue()


def test_an_error_in_the_view_is_logged_once_and_stops_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    cells = _cells(tmp_path, seeds=1)
    view = ProgressView(cells, stream=io.StringIO(), interval=0.01, live=False)

    def broken(cell, now=None):
        raise RuntimeError("unreadable")

    monkeypatch.setattr(progress_view, "snapshot", broken)
    with caplog.at_level(logging.WARNING, logger=progress_view.__name__):
        with view:
            time.sleep(0.1)
    assert [r.getMessage() for r in caplog.records] == ["progress view stopped after an error (the run goes on)"]


def test_ctrl_c_stops_the_view_and_is_raised_again(tmp_path: Path) -> None:
    cells = _cells(tmp_path, seeds=1)
    with pytest.raises(KeyboardInterrupt):
        with progress_view.show_progress(cells, title="t") as view:
            raise KeyboardInterrupt
    assert view is not None and not view._thread.is_alive()
    with progress_view.show_progress(cells, enabled=False) as disabled:
        assert disabled is None


def test_summary_line_of_a_blocked_cell_names_the_reason(tmp_path: Path) -> None:
    view = progress_view.CellView(label="c", state="blocked", attempts=0, error_line="pre-training p failed")
    assert summary_line(view) == "BLOCKED  c  pre-training p failed"


def test_run_help_shows_no_progress_flag(capsys: pytest.CaptureFixture) -> None:
    import argparse

    from mae_transfer.matrix import cli

    parser = argparse.ArgumentParser(prog="mae-transfer")
    cli.register(parser.add_subparsers())
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "--help"])
    assert "--no-progress" in capsys.readouterr().out
