"""The plan / status / rehearsal tables: readable in a 100-column terminal, one line per cell elsewhere."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from mae_transfer.matrix.cli import plan_table
from mae_transfer.matrix.plan.planner import plan_matrix
from mae_transfer.matrix.spec.matrix_spec import load_spec
from mae_transfer.tables import Column, print_table

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def paper_plan(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("paper")
    return plan_matrix(load_spec(BENCHMARKS / "mae_paper.yaml", work_root=root / "runs"))


def _printed(plan, terminal: bool) -> list[str]:
    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, width=100, color_system=None)
    print_table(console, *plan_table(plan))
    return out.getvalue().splitlines()


def test_paper_plan_is_one_line_per_cell_when_piped(paper_plan) -> None:
    lines = _printed(paper_plan, terminal=False)
    assert len(lines) == 3 + len(paper_plan.cells)  # title, header, one line per cell, the caption
    assert lines[-1].startswith("GPUs: nodes x GPUs per node; batch: effective = per GPU x accumulation x processes")
    for cell in paper_plan.cells:
        (line,) = [line for line in lines if line.startswith(cell.label + " ")]
        assert cell.id[:10] in line and str(cell.effective_batch) in line
        assert "configs/" not in line and "/" + Path(cell.config).name in line  # named under configs/, not absolute
        assert Path(cell.work_dir).name not in line  # the id is not shown twice


def test_paper_plan_fits_a_100_column_terminal(paper_plan) -> None:
    lines = _printed(paper_plan, terminal=True)
    assert max(len(line) for line in lines) <= 100
    rows = len(lines) - 6  # title, a blank line, the header, its rule; a blank line and the caption
    assert rows <= 3 * len(paper_plan.cells), f"{rows} lines for {len(paper_plan.cells)} cells"


def test_piped_rows_align_under_their_headers() -> None:
    out = io.StringIO()
    print_table(Console(file=out, force_terminal=False, width=40), "t",
                [Column("cell"), Column("n", justify="right")], [["a-long-cell-name", "7"], ["b", "1234"]])
    assert out.getvalue().splitlines() == ["t", "cell                 n", "a-long-cell-name     7", "b                 1234"]
