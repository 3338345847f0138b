"""PNG charts: the user's numbers against the paper's (bars, one panel per task metric), and the
curves of a sweep along a pre-training parameter (`mae_transfer.leaderboard.sweep`)."""

from __future__ import annotations

import io

from mae_transfer.leaderboard.aggregate import Table
from mae_transfer.leaderboard.sweep import SweepTable, value_order


def bar_panels(tables: list[Table]) -> list[tuple[str, list[tuple[str, float, float, float | None]]]]:
    """(title, bars) per task metric with a value; a bar is (label, mean, std, the paper's number or None).

    The paper's number is drawn only beside a reference of the row's own pre-training.
    """
    panels = []
    for table in tables:
        if not table.layout.percent:  # e.g. the pre-training loss: no paper number, another scale
            continue
        for task, metric, header in table.layout.columns:
            bars = []
            for row in table.rows:
                entry = row.entries.get((task, metric))
                if entry is None or entry.mean is None:
                    continue
                label = " ".join(filter(None, [row.backbone, row.recipe, row.variant, "†" if entry.off_recipe else ""]))
                reference = entry.reference.value if entry.reference and entry.comparable else None
                bars.append((label, entry.mean, entry.std or 0.0, reference))
            if bars:
                panels.append((f"{task}: {header}", bars))
    return panels


def render_png(tables: list[Table]) -> bytes | None:
    """The chart as PNG bytes (matplotlib, Agg backend); None when no entry has a value."""
    panels = bar_panels(tables)
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(1, len(panels), figsize=(max(4.0, 3.2 * len(panels)), 4.8), squeeze=False)
    width = 0.38
    for axis, (title, bars) in zip(axes[0], panels):
        positions = range(len(bars))
        axis.bar([p - width / 2 for p in positions], [b[1] for b in bars], width, yerr=[b[2] for b in bars],
                 label="this run", color="#3b75af", capsize=3)
        axis.bar([p + width / 2 for p in positions], [b[3] or 0.0 for b in bars], width, label="paper",
                 color="#bbbbbb", hatch="//")
        axis.set_xticks(list(positions), [b[0] for b in bars], fontsize=7, rotation=30, ha="right")
        axis.set_title(title, fontsize=9)
        axis.set_ylabel("percent")
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    return buffer.getvalue()


def render_sweep_png(tables: list[SweepTable]) -> bytes | None:
    """The sweep curves as PNG bytes: one panel per task metric, one line per sweep table (mean ± std
    over seeds against the parameter's value); None when no entry has a value.

    Numeric values are placed on a numeric axis; any other value (e.g. ``norm_pix_loss``) makes
    the axis categorical, in the tables' order.
    """
    numeric = all(value_order(row.value)[0] == 0 for table in tables for row in table.rows)
    categories = list(dict.fromkeys(row.label for table in tables for row in table.rows))
    panels: dict[tuple, tuple[str, list]] = {}
    for index, table in enumerate(tables):
        for column in table.columns:
            points = [(float(row.value) if numeric else categories.index(row.label), row.entries[column].mean,
                       row.entries[column].std or 0.0) for row in table.rows
                      if column in row.entries and row.entries[column].mean is not None]
            if points:
                key = (column.task, column.recipe, column.variant, column.metric)
                panels.setdefault(key, (column.header, []))[1].append((index, table.label, points))
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    param = tables[0].param
    figure, axes = plt.subplots(1, len(panels), figsize=(max(4.5, 4.0 * len(panels)), 3.6), squeeze=False)
    for axis, (title, lines) in zip(axes[0], panels.values()):
        for index, label, points in lines:  # a table keeps its colour in every panel
            axis.errorbar([p[0] for p in points], [p[1] for p in points], yerr=[p[2] for p in points], marker="o",
                          capsize=3, label=label, color=f"C{index % 10}")
        if not numeric:
            axis.set_xticks(range(len(categories)), categories, fontsize=7)
        axis.set_xlabel(param)
        axis.set_title(title, fontsize=9)
        axis.legend(fontsize=6)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    return buffer.getvalue()
