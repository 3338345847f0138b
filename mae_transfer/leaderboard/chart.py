"""A PNG bar chart of the user's numbers against the paper's, one panel per task metric."""

from __future__ import annotations

import io

from mae_transfer.leaderboard.aggregate import Table


def render_png(tables: list[Table]) -> bytes | None:
    """The chart as PNG bytes (matplotlib, Agg backend); None when no entry has a value."""
    panels = []
    for table in tables:
        for task, metric, header in table.layout.columns:
            bars = []
            for row in table.rows:
                entry = row.entries.get((task, metric))
                if entry is None or entry.mean is None:
                    continue
                label = (f"{row.backbone}\n{row.recipe}" + (f" {row.variant}" if row.variant else "")
                         + (" †" if entry.off_recipe else ""))
                reference = entry.reference.value if entry.reference else None
                bars.append((label, entry.mean, entry.std or 0.0, reference))
            if bars:
                panels.append((f"{task}: {header}", bars))
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(1, len(panels), figsize=(max(4.0, 3.2 * len(panels)), 4.0), squeeze=False)
    width = 0.38
    for axis, (title, bars) in zip(axes[0], panels):
        positions = range(len(bars))
        axis.bar([p - width / 2 for p in positions], [b[1] for b in bars], width, yerr=[b[2] for b in bars],
                 label="this run", color="#3b75af", capsize=3)
        axis.bar([p + width / 2 for p in positions], [b[3] or 0.0 for b in bars], width, label="paper",
                 color="#bbbbbb", hatch="//")
        axis.set_xticks(list(positions), [b[0] for b in bars], fontsize=7)
        axis.set_title(title, fontsize=9)
        axis.set_ylabel("percent")
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    return buffer.getvalue()
