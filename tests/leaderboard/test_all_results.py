"""`leaderboard --all-results`: a finished cell's result survives a config edit that re-plans it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mae_transfer.cli import main
from mae_transfer.leaderboard import build_leaderboard
from mae_transfer.matrix.plan.planner import plan_matrix
from mae_transfer.matrix.spec.matrix_spec import load_spec

MATRIX = """
name: edited
backbones:
  - {{name: mine_b, checkpoint: b.pth, arch: vit_base_patch16}}
tasks:
  - {{task: inat2017, recipe: paper, overrides: {{train_cfg.max_epochs: {epochs}}}}}
"""


def _finish(cell, top1: float) -> None:
    """Write what a finished cell leaves: its cell.json and a valid result.json."""
    cell_dir = Path(cell.work_dir)
    cell_dir.mkdir(parents=True)
    (cell_dir / "cell.json").write_text(json.dumps(cell.to_json()))
    (cell_dir / "result.json").write_text(json.dumps({
        "schema": 1, "cell": {"id": cell.id, "backbone": cell.backbone, "task": cell.task, "recipe": cell.recipe,
                              "seed": cell.seed},
        "metrics": {"top1": top1, "top5": 90.0},
        "provenance": {"eval_mode": "ss", "checkpoint_policy": "last", "effective_batch": 1024, "gpus": 8}}))


@pytest.fixture()
def edited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MAE_TRANSFER_CACHE", str(tmp_path / "cache"))
    matrix = tmp_path / "m.yaml"
    matrix.write_text(MATRIX.format(epochs=100))
    (old,) = plan_matrix(load_spec(matrix)).cells
    _finish(old, 70.0)
    matrix.write_text(MATRIX.format(epochs=90))  # the edit: a new cell id, the old result is not its own
    return matrix


def test_the_default_board_shows_only_the_plan(edited: Path) -> None:
    board = build_leaderboard(plan_matrix(load_spec(edited)))
    assert [o.status for o in board.collection.outcomes] == ["missing"]
    assert "70.00" not in board.render("md")


def test_all_results_shows_the_earlier_config_as_its_own_row(edited: Path) -> None:
    plan = plan_matrix(load_spec(edited))
    (new,) = plan.cells
    _finish(new, 72.0)
    board = build_leaderboard(plan, all_results=True)
    by_plan = {o.planned: o for o in board.collection.outcomes}
    assert by_plan[True].cell.id == new.id and by_plan[True].result["metrics"]["top1"] == 72.0
    old = by_plan[False]
    assert old.cell.id != new.id and old.result["metrics"]["top1"] == 70.0
    rows = {row.variant: row for table in board.tables for row in table.rows}
    assert set(rows) == {"finetune", f"finetune not planned ({old.cell.id[:10]})"}  # never merged as seeds
    assert rows["finetune"].entries[("inat2017", "top1")].values == [72.0]
    assert rows[f"finetune not planned ({old.cell.id[:10]})"].entries[("inat2017", "top1")].values == [70.0]


def test_all_results_through_the_cli(edited: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["leaderboard", str(edited), "--all-results"]) == 0
    out = capsys.readouterr().out
    assert "not planned" in out and "70.00" in out


def test_a_damaged_unplanned_result_is_a_problem_not_a_crash(edited: Path) -> None:
    plan = plan_matrix(load_spec(edited))
    (stray,) = [p for p in (plan.spec.work_root / "cells").iterdir() if p.is_dir()]
    (stray / "cell.json").write_text("{")
    board = build_leaderboard(plan, all_results=True)
    assert [o.planned for o in board.collection.outcomes] == [True]
    assert any("unplanned result not read" in p and str(stray) in p for p in board.problems)
