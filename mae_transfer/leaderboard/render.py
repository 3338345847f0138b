"""Render leaderboard tables as Markdown, CSV or one self-contained HTML file.

An entry reads ``mean ± std (n=k)`` followed by ``Δ delta`` against a reference of the same
pre-training; against a reference of another pre-training (the nearest there is) it reads
``vs VALUE (other pre-training) ‡`` with no delta, and the ``‡`` footnote names both pre-trainings.
Seeds that failed or have not run are marked (``2 failed``, ``1 missing``), and an entry with no
finished seed says so instead of disappearing. Reference rows follow the user's rows, one per
pre-training they report (``reference (MAE, 800 ep raw pixels)``), with numbered sources under each
table. An entry trained off its recipe's batch or lr ends with ``†``; the footnote under the table
names the row and the reason (CSV: the ``off_recipe`` column).
With a baseline (`mae_transfer.leaderboard.baseline`), a table of differences (other − baseline,
means over seeds) follows the table (CSV: the ``vs_baseline`` column).
"""

from __future__ import annotations

import base64
import csv
import html
import io

from mae_transfer.leaderboard.aggregate import PROVENANCE, Entry, Row, Table

PROVENANCE_HEADERS = ("eval", "ckpt", "batch", "GPUs", "commit")
OFF_RECIPE_MARK = "†"
OTHER_PRETRAINING_MARK = "‡"


def reference_text(value: float) -> str:
    """A published number as the paper prints it (81.0, 48.13)."""
    return f"{value:.1f}" if round(value, 1) == value else f"{value:g}"


def format_entry(entry: Entry | None, decimals: int = 2) -> str:
    """The text of one table entry (``decimals`` digits for the mean and std)."""
    if entry is None:
        return "-"
    notes = [f"{count} {name}" for name, count in (("failed", entry.failed), ("blocked", entry.blocked),
                                                   ("running", entry.running), ("interrupted", entry.interrupted),
                                                   ("missing", entry.missing))
             if count]
    if entry.mean is None:
        return ", ".join(notes) or "missing"
    text = (f"{entry.mean:.{decimals}f}" + (f" ± {entry.std:.{decimals}f}" if entry.std is not None else "")
            + f" (n={entry.n})")
    if entry.delta is not None:
        text += f" Δ {entry.delta:+.2f}"
    elif entry.reference is not None and not entry.comparable:
        text += f" vs {reference_text(entry.reference.value)} (other pre-training) {OTHER_PRETRAINING_MARK}"
    if notes:
        text += f" [{', '.join(notes)}]"
    return text + (f" {OFF_RECIPE_MARK}" if entry.off_recipe else "")


def off_recipe_notes(table: Table) -> list[str]:
    """The footnotes of a table's off-recipe rows: which row, and why."""
    notes = []
    for row in table.rows:
        for reason in row.off_recipe:
            notes.append(f"{OFF_RECIPE_MARK} off-recipe: {row.backbone} {row.recipe} {row.variant}: {reason}")
    return notes


def pretraining_notes(table: Table, sources: list[str]) -> list[str]:
    """The footnotes of rows shown beside a reference of another pre-training: both pre-trainings."""
    notes = []
    for row in table.rows:
        others = []
        for entry in row.entries.values():
            reference = entry.reference
            if entry.mean is not None and reference is not None and not entry.comparable and reference not in others:
                others.append(reference)
        if not others or row.pretrain is None:
            continue
        cited = "; ".join(f"{reference_text(r.value)} [{sources.index(r.source) + 1}] reports "
                          f"{r.pretrain.describe() if r.pretrain else 'another pre-training'}" for r in others)
        name = " ".join(filter(None, [row.backbone, row.recipe, row.variant]))
        notes.append(f"{OTHER_PRETRAINING_MARK} no difference: {name}: pre-training {row.pretrain.describe()}; "
                     f"the nearest reference {cited}")
    return notes


def _provenance(row: Row, key: str) -> str:
    values = row.provenance[key]
    return "/".join(sorted(values)) if values else "-"


def _sources(table: Table) -> list[str]:
    sources: list[str] = []
    for group in table.references:
        for reference in group.found.values():
            if reference.source not in sources:
                sources.append(reference.source)
    return sources


def table_rows(table: Table) -> tuple[list[str], list[list[str]], list[str]]:
    """(header, body rows, numbered sources) of one table, as text."""
    header = ["backbone", "arch", "recipe", "variant", *(h for _, _, h in table.layout.columns), *PROVENANCE_HEADERS]
    body = []
    for row in table.rows:
        body.append([row.label, row.arch_label, row.recipe, row.variant or "-",
                     *(format_entry(row.entries.get((task, metric)), table.layout.decimals)
                       for task, metric, _ in table.layout.columns),
                     *(_provenance(row, key) for key in PROVENANCE)])
    sources = _sources(table)
    for group in table.references:
        label = Row("", group.arch, group.recipe, group.variant).arch_label
        values = []
        for task, metric, _ in table.layout.columns:
            reference = group.found.get((task, metric))
            values.append("-" if reference is None else
                          f"{reference_text(reference.value)} [{sources.index(reference.source) + 1}]")
        name = f"reference (MAE, {group.pretrain.short()})" if group.pretrain else "reference (MAE)"
        body.append([name, label, group.recipe, group.variant or "-", *values, *("-" for _ in PROVENANCE)])
    return header, body, sources


def difference_rows(table: Table) -> tuple[list[str], list[list[str]]]:
    """(header, body rows) of a table's differences to the baseline, as text (no rows without a baseline)."""
    header = ["difference", "arch", "recipe", "variant", *(h for _, _, h in table.layout.columns)]
    body = []
    for difference in table.differences:
        row = difference.row
        values = [difference.value(task, metric) for task, metric, _ in table.layout.columns]
        body.append([difference.label, row.arch_label, row.recipe, row.variant or "-",
                     *("-" if value is None else f"{value:+.{table.layout.decimals}f}" for value in values)])
    return header, body


def markdown_table(header: list[str], body: list[list[str]]) -> list[str]:
    """The lines of a Markdown table."""
    return ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|",
            *("| " + " | ".join(cells) + " |" for cells in body)]


def render_markdown(name: str, tables: list[Table], problems: list[str]) -> str:
    """The leaderboard as Markdown: one section per paper table."""
    lines = [f"# Leaderboard: {name}", ""]
    if not tables:
        lines += ["No cells planned.", ""]
    for table in tables:
        header, body, sources = table_rows(table)
        lines += [f"## {table.layout.title}", "", *markdown_table(header, body), ""]
        lines += [f"- [{i}] {source}" for i, source in enumerate(sources, 1)]
        notes = off_recipe_notes(table) + pretraining_notes(table, sources)
        lines += [f"- {note}" for note in notes]
        if sources or notes:
            lines.append("")
        header, body = difference_rows(table)
        if body:
            lines += [f"Difference to the baseline {table.differences[0].baseline.backbone} (other − baseline, "
                      "means over seeds):", "", *markdown_table(header, body), ""]
    if problems:
        lines += ["## Problems", ""] + [f"- {problem}" for problem in problems] + [""]
    return "\n".join(lines)


CSV_HEADER = ("table", "backbone", "arch", "task", "recipe", "variant", "metric", "mean", "std", "n", "planned",
              "failed", "blocked", "running", "missing", "pretraining", "reference", "delta", "reference_source",
              "reference_pretraining", "comparable", *PROVENANCE, "off_recipe", "vs_baseline")


def number_text(value: float | None) -> str:
    """A CSV number (4 decimals; empty for None)."""
    return "" if value is None else f"{value:.4f}"


def render_csv(tables: list[Table]) -> str:
    """The leaderboard in long form: one line per (row, task, metric) entry."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for table in tables:
        differences = {id(difference.row): difference for difference in table.differences}
        for row in table.rows:
            difference = differences.get(id(row))
            for (task, metric), entry in row.entries.items():
                reference = entry.reference
                writer.writerow([
                    table.layout.key, row.backbone, row.arch, task, row.recipe, row.variant, metric,
                    number_text(entry.mean), number_text(entry.std), entry.n, entry.planned, entry.failed, entry.blocked,
                    entry.running,
                    entry.missing, "" if row.pretrain is None else row.pretrain.describe(),
                    "" if reference is None else f"{reference.value:g}", number_text(entry.delta),
                    "" if reference is None else reference.source,
                    "" if reference is None or reference.pretrain is None else reference.pretrain.describe(),
                    "" if reference is None else ("yes" if entry.comparable else "no"),
                    *("/".join(sorted(row.provenance[key])) for key in PROVENANCE),
                    "; ".join(row.off_recipe) if entry.off_recipe else "",
                    "" if difference is None else number_text(difference.value(task, metric)),
                ])
    return buffer.getvalue()


HTML_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;font-size:14px}
th{background:#f3f3f3}tr.reference td{color:#555;font-style:italic}.problems{color:#a00}"""


def html_table(header: list[str], body: list[list[str]], css: str = "") -> str:
    """An HTML table of text cells (escaped)."""
    escape = html.escape
    rows = ["<tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>"]
    rows += ["<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>" for cells in body]
    return f"<table{f' class={css!r}' if css else ''}>" + "\n".join(rows) + "</table>"


def render_html(name: str, tables: list[Table], problems: list[str], chart_png: bytes | None) -> str:
    """One self-contained HTML file: the tables and the chart embedded as base64."""
    escape = html.escape
    parts = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'>", f"<title>Leaderboard: {escape(name)}</title>",
             f"<style>{HTML_STYLE}</style></head><body>", f"<h1>Leaderboard: {escape(name)}</h1>"]
    for table in tables:
        header, body, sources = table_rows(table)
        parts += [f"<h2>{escape(table.layout.title)}</h2>", "<table>",
                  "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>"]
        for cells in body:
            css = " class='reference'" if cells[0].startswith("reference") else ""
            parts.append(f"<tr{css}>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
        parts.append("</table>")
        parts += [f"<p>[{i}] {escape(source)}</p>" for i, source in enumerate(sources, 1)]
        parts += [f"<p class='off-recipe'>{escape(note)}</p>" for note in off_recipe_notes(table)]
        parts += [f"<p class='pretraining'>{escape(note)}</p>" for note in pretraining_notes(table, sources)]
        header, body = difference_rows(table)
        if body:
            parts += [f"<p>Difference to the baseline {escape(table.differences[0].baseline.backbone)} "
                      "(other − baseline, means over seeds):</p>", html_table(header, body, "difference")]
    parts += html_tail(chart_png, "User vs paper", "bar chart", problems)
    return "\n".join(parts)


def html_tail(chart_png: bytes | None, heading: str, alt: str, problems: list[str]) -> list[str]:
    """The end of a leaderboard page: the chart embedded as base64, the problems, the closing tags."""
    parts = []
    if chart_png:
        encoded = base64.b64encode(chart_png).decode()
        parts.append(f"<h2>{heading}</h2><img alt='{alt}' src='data:image/png;base64,{encoded}'>")
    if problems:
        parts += ["<h2>Problems</h2><ul class='problems'>", *(f"<li>{html.escape(p)}</li>" for p in problems), "</ul>"]
    parts.append("</body></html>")
    return parts
