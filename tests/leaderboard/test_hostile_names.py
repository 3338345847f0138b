"""Names from a result's cell.json or a reference file cannot break a table or run in a spreadsheet."""

from __future__ import annotations

import csv
import io

from mae_transfer.leaderboard.aggregate import LAYOUTS, Entry, ReferenceRow, Row, Table
from mae_transfer.leaderboard.baseline import Difference
from mae_transfer.leaderboard.references import Reference
from mae_transfer.leaderboard.render import render_csv, render_markdown
from mae_transfer.leaderboard.sweep import SweepColumn, SweepRow, SweepTable
from mae_transfer.leaderboard.sweep_render import render_sweep_csv, render_sweep_markdown

TABLE6 = next(layout for layout in LAYOUTS if layout.key == "table6")
HOSTILE = {"backbone": "evil|name", "recipe": "=HYPERLINK(\"http://x\")", "variant": "+cmd|x", "commit": "@SUM(A1)"}


def _tables() -> list[Table]:
    reference = Reference(task="inat2017", recipe=HOSTILE["recipe"], arch="vit_base_patch16", metric="top1",
                          value=70.5, pretraining="mae", source="-2+3 | paper")
    row = Row(HOSTILE["backbone"], "vit_base_patch16", HOSTILE["recipe"], HOSTILE["variant"],
              entries={("inat2017", "top1"): Entry(values=[69.0, 70.0], planned=2, reference=reference,
                                                   comparable=True)})
    row.provenance["git_commit"].add(HOSTILE["commit"])
    base = Row("base", "vit_base_patch16", HOSTILE["recipe"], HOSTILE["variant"],
               entries={("inat2017", "top1"): Entry(values=[71.0], planned=1)})
    found = ReferenceRow("vit_base_patch16", HOSTILE["recipe"], HOSTILE["variant"], None,
                         {("inat2017", "top1"): reference})
    table = Table(TABLE6, [row, base], [found])
    table.differences = [Difference(row, base)]
    return [table]


def _tables_in(markdown: str) -> list[list[str]]:
    """The Markdown tables of a page, each as its lines."""
    tables: list[list[str]] = [[]]
    for line in markdown.splitlines():
        if line.startswith("|"):
            tables[-1].append(line)
        elif tables[-1]:
            tables.append([])
    return [table for table in tables if table]


def _unescaped_pipes(line: str) -> int:
    return sum(1 for i, char in enumerate(line) if char == "|" and (i == 0 or line[i - 1] != "\\"))


def test_markdown_escapes_pipes_and_a_leading_equals() -> None:
    tables = _tables_in(render_markdown("board", _tables(), []))
    assert len(tables) == 2  # the table and its differences
    for table in tables:  # every row has its header's number of cell borders
        assert all(_unescaped_pipes(line) == _unescaped_pipes(table[0]) for line in table), table
    body = "\n".join(tables[0])
    assert "evil\\|name" in body and "| \\=HYPERLINK" in body and "+cmd\\|x" in body and "@SUM(A1)" in body
    assert "evil\\|name − base" in "\n".join(tables[1])


def test_csv_text_fields_cannot_start_a_formula_and_numbers_stay_numbers() -> None:
    rows = list(csv.DictReader(io.StringIO(render_csv(_tables()))))
    mine = next(row for row in rows if "evil" in row["backbone"])
    assert mine["backbone"] == "evil|name"  # quoted by the csv module, not mangled
    assert mine["recipe"] == "'=HYPERLINK(\"http://x\")" and mine["variant"] == "'+cmd|x"
    assert mine["git_commit"] == "'@SUM(A1)" and mine["reference_source"] == "'-2+3 | paper"
    assert mine["delta"] == "-1.0000" and mine["vs_baseline"] == "-1.5000"  # numbers keep their sign
    for row in rows:
        for key, value in row.items():
            if key not in ("mean", "std", "delta", "vs_baseline", "reference"):
                assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), (key, value)


def test_sweep_tables_escape_the_same_way() -> None:
    column = SweepColumn(task="inat2017", recipe=HOSTILE["recipe"], variant=HOSTILE["variant"], metric="top1",
                         header="=x|y")
    table = SweepTable(stage="=stage|1", param="mask_ratio", fixed={"epochs": "@4"},
                       columns=[column], rows=[SweepRow(label="a|b", value=0.5,
                                                        entries={column: Entry(values=[1.0], planned=1)})])
    (lines,) = _tables_in(render_sweep_markdown("board", [table], []))
    assert all(_unescaped_pipes(line) == _unescaped_pipes(lines[0]) for line in lines), lines
    assert "a\\|b" in lines[2] and "\\=x\\|y" in lines[0]
    rows = list(csv.DictReader(io.StringIO(render_sweep_csv([table]))))
    assert rows[0]["stage"] == "'=stage|1" and rows[0]["recipe"].startswith("'=") and rows[0]["fixed"] == "epochs=@4"
