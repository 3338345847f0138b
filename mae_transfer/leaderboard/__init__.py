"""The leaderboard: collect every planned cell's result, aggregate seeds, join references, render.

``build_leaderboard(plan).render(fmt)`` returns the rendered text (or PNG bytes); every planned
cell appears, finished or not, and unreadable result files are listed under Problems. An entry
gets a difference only against a reference of its backbone's pre-training
(`mae_transfer.leaderboard.pretrain_setting`); otherwise the nearest reference is shown beside it.
With ``baseline`` each table also shows every other backbone minus the baseline; with ``along`` the
leaderboard is the sweep along a pre-training parameter (`mae_transfer.leaderboard.sweep`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mae_transfer.leaderboard.aggregate import LAYOUTS, Entry, Row, Table, build_tables
from mae_transfer.leaderboard.baseline import BaselineError, Difference, add_baseline
from mae_transfer.leaderboard.collect import CellOutcome, Collection, collect
from mae_transfer.leaderboard.references import DEFAULT_REFERENCES, Reference, load_references
from mae_transfer.leaderboard.render import render_csv, render_html, render_markdown
from mae_transfer.leaderboard.sweep import SweepError, SweepTable, build_sweeps
from mae_transfer.matrix.plan.planner import Plan

FORMATS = ("md", "csv", "html", "png")


@dataclass
class Leaderboard:
    """Aggregated tables of a matrix (or its sweep tables) and the problems met while collecting."""

    name: str
    tables: list[Table]
    problems: list[str]
    collection: Collection
    sweeps: list[SweepTable] | None = None
    _chart: tuple[bytes | None] | None = field(default=None, init=False, repr=False, compare=False)

    def render(self, fmt: str) -> str | bytes:
        """The leaderboard in ``fmt`` (md, csv, html: text; png: bytes, empty when no values)."""
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
        if fmt == "png":
            return self.plot() or b""
        if self.sweeps is not None:
            from mae_transfer.leaderboard.sweep_render import (render_sweep_csv, render_sweep_html,
                                                               render_sweep_markdown)

            if fmt == "md":
                return render_sweep_markdown(self.name, self.sweeps, self.problems)
            if fmt == "csv":
                return render_sweep_csv(self.sweeps)
            return render_sweep_html(self.name, self.sweeps, self.problems, self.plot())
        if fmt == "md":
            return render_markdown(self.name, self.tables, self.problems)
        if fmt == "csv":
            return render_csv(self.tables)
        return render_html(self.name, self.tables, self.problems, self.plot())

    def plot(self) -> bytes | None:
        """The chart as PNG bytes: the sweep curves, else user vs paper bars; None when no values (drawn once)."""
        from mae_transfer.leaderboard.chart import render_png, render_sweep_png

        if self._chart is None:
            self._chart = (render_sweep_png(self.sweeps) if self.sweeps is not None else render_png(self.tables),)
        return self._chart[0]


def build_leaderboard(plan: Plan, references: list[Reference] | None = None, all_results: bool = False,
                      baseline: str | None = None, along: str | None = None) -> Leaderboard:
    """Collect and aggregate the results of ``plan`` (references from the spec, or the default file).

    ``all_results``: also every result under the work root whose cell the plan no longer holds.
    ``baseline``: a backbone; every other backbone's rows get a difference row against it.
    ``along``: a pre-training parameter; the leaderboard renders its sweep tables.

    Raises:
        BaselineError: ``baseline`` is not a backbone of the leaderboard (the message lists them).
        SweepError: no transfer cell's pre-training has ``along`` (the message lists the parameters).
    """
    if references is None:
        references = load_references(plan.spec.references or (DEFAULT_REFERENCES,))
    collection = collect(plan, include_unplanned=all_results)
    failures = [f"{o.cell.label}: {o.status}: {o.error}" for o in collection.outcomes
                if o.status in ("failed", "blocked") and o.error and not o.error.startswith("corrupt")]
    generated = tuple(backbone.name for backbone in plan.spec.backbones if backbone.generated)
    tables = build_tables(collection, references, generated)
    if baseline is not None:
        add_baseline(tables, baseline)
    sweeps = build_sweeps(collection, along) if along is not None else None
    return Leaderboard(plan.spec.name, tables, collection.problems + failures, collection, sweeps)


__all__ = ["FORMATS", "LAYOUTS", "BaselineError", "CellOutcome", "Collection", "Difference", "Entry", "Leaderboard",
           "Reference", "Row", "SweepError", "SweepTable", "Table", "build_leaderboard", "collect", "load_references"]
