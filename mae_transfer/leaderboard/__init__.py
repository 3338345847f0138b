"""The leaderboard: collect every planned cell's result, aggregate seeds, join references, render.

``leaderboard(plan, fmt)`` returns the rendered text (or PNG bytes); every planned cell appears,
finished or not, and unreadable result files are listed under Problems.
"""

from __future__ import annotations

from dataclasses import dataclass

from mae_transfer.leaderboard.aggregate import LAYOUTS, Entry, Row, Table, build_tables
from mae_transfer.leaderboard.collect import CellOutcome, Collection, collect
from mae_transfer.leaderboard.references import DEFAULT_REFERENCES, Reference, load_references
from mae_transfer.leaderboard.render import render_csv, render_html, render_markdown
from mae_transfer.matrix.planner import Plan

FORMATS = ("md", "csv", "html", "png")


@dataclass
class Leaderboard:
    """Aggregated tables of a matrix and the problems met while collecting."""

    name: str
    tables: list[Table]
    problems: list[str]
    collection: Collection

    def render(self, fmt: str) -> str | bytes:
        """The leaderboard in ``fmt`` (md, csv, html: text; png: bytes, empty when no values)."""
        if fmt == "md":
            return render_markdown(self.name, self.tables, self.problems)
        if fmt == "csv":
            return render_csv(self.tables)
        from mae_transfer.leaderboard.chart import render_png

        if fmt == "png":
            return render_png(self.tables) or b""
        if fmt == "html":
            return render_html(self.name, self.tables, self.problems, render_png(self.tables))
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def build_leaderboard(plan: Plan, references: list[Reference] | None = None, all_results: bool = False) -> Leaderboard:
    """Collect and aggregate the results of ``plan`` (references from the spec, or the default file).

    ``all_results``: also every result under the work root whose cell the plan no longer holds.
    """
    if references is None:
        references = load_references(plan.spec.references or (DEFAULT_REFERENCES,))
    collection = collect(plan, include_unplanned=all_results)
    failures = [f"{o.cell.label}: failed: {o.error}" for o in collection.outcomes if o.status == "failed" and o.error
                and not o.error.startswith("corrupt")]
    return Leaderboard(plan.spec.name, build_tables(collection, references), collection.problems + failures, collection)


__all__ = ["FORMATS", "LAYOUTS", "CellOutcome", "Collection", "Entry", "Leaderboard", "Reference", "Row", "Table",
           "build_leaderboard", "collect", "load_references"]
