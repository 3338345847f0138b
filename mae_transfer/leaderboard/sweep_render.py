"""Render sweep tables (`mae_transfer.leaderboard.sweep`) as Markdown, CSV or self-contained HTML.

Entries read as in the paper tables (``mean ± std (n=k)``, failed/blocked/missing seeds named);
there is no reference column, the reference files holding no sweep numbers.
"""

from __future__ import annotations

import csv
import html
import io

from mae_transfer.leaderboard.render import (
    HTML_STYLE,
    format_entry,
    html_table,
    html_tail,
    markdown_table,
    number_text,
)
from mae_transfer.leaderboard.sweep import SweepTable, value_text

NO_REFERENCE = "No paper numbers: the reference files hold none for this sweep."
# under an epochs sweep that holds a snapshot row: what Fig. 7 is and what a snapshot is not
SNAPSHOTS = ("A 'full N-epoch schedule' row is a pre-training of its own, as every point of the MAE paper's Fig. 7 "
             "(a stage's sweep: {epochs: [...]}); a 'snapshot at epoch E of an N-epoch schedule' row is a checkpoint "
             "of one longer cosine schedule (evaluate_epochs), not a Fig. 7 point.")


def _notes(table: SweepTable) -> list[str]:
    """The paragraphs under a sweep table."""
    snapshot = table.param == "epochs" and any(row.label.startswith("snapshot") for row in table.rows)
    return [NO_REFERENCE, *([SNAPSHOTS] if snapshot else [])]


def sweep_rows(table: SweepTable) -> tuple[list[str], list[list[str]]]:
    """(header, body rows) of one sweep table, as text."""
    header = [table.param, *(column.header for column in table.columns)]
    body = [[row.label, *(format_entry(row.entries.get(column)) for column in table.columns)] for row in table.rows]
    return header, body


def render_sweep_markdown(name: str, tables: list[SweepTable], problems: list[str]) -> str:
    """The sweep tables as Markdown, one section each."""
    lines = [f"# Leaderboard: {name}", ""]
    for table in tables:
        header, body = sweep_rows(table)
        lines += [f"## {table.title}", "", *markdown_table(header, body), ""]
        for note in _notes(table):
            lines += [note, ""]
    if problems:
        lines += ["## Problems", ""] + [f"- {problem}" for problem in problems] + [""]
    return "\n".join(lines)


SWEEP_CSV_HEADER = ("stage", "param", "value", "fixed", "task", "recipe", "variant", "metric", "mean", "std", "n",
                    "planned", "failed", "blocked", "running", "missing")


def render_sweep_csv(tables: list[SweepTable]) -> str:
    """The sweeps in long form: one line per (table, value, column) entry."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SWEEP_CSV_HEADER)
    for table in tables:
        fixed = " ".join(f"{name}={value_text(value)}" for name, value in sorted(table.fixed.items()))
        for row in table.rows:
            for column in table.columns:
                entry = row.entries.get(column)
                if entry is None:
                    continue
                writer.writerow([table.stage, table.param, row.label, fixed, column.task, column.recipe, column.variant,
                                 column.metric, number_text(entry.mean), number_text(entry.std), entry.n, entry.planned,
                                 entry.failed, entry.blocked, entry.running, entry.missing])
    return buffer.getvalue()


def render_sweep_html(name: str, tables: list[SweepTable], problems: list[str], chart_png: bytes | None) -> str:
    """One self-contained HTML file: the sweep tables and their curves embedded as base64."""
    escape = html.escape
    parts = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'>", f"<title>Leaderboard: {escape(name)}</title>",
             f"<style>{HTML_STYLE}</style></head><body>", f"<h1>Leaderboard: {escape(name)}</h1>"]
    for table in tables:
        parts += [f"<h2>{escape(table.title)}</h2>", html_table(*sweep_rows(table)),
                  *(f"<p>{escape(note)}</p>" for note in _notes(table))]
    parts += html_tail(chart_png, "Curves", "sweep curves", problems)
    return "\n".join(parts)
