"""Differences to a baseline backbone: every other row minus the baseline's, per task metric.

``leaderboard --baseline BACKBONE`` (e.g. the random initialisation beside a pre-trained MAE):
a row is compared with the baseline's row of the same recipe and variant in the same table; the
difference is of the means over seeds (None where either side has no finished seed).
"""

from __future__ import annotations

from dataclasses import dataclass

from mae_transfer.leaderboard.aggregate import Row, Table


class BaselineError(ValueError):
    """The baseline backbone is not in the leaderboard; names the backbones that are."""


@dataclass
class Difference:
    """A row minus the baseline's row (same table, recipe and variant)."""

    row: Row
    baseline: Row

    @property
    def label(self) -> str:
        return f"{self.row.backbone} − {self.baseline.backbone}"

    def value(self, task: str, metric: str) -> float | None:
        """Mean over seeds of the row minus that of the baseline; None when either has no value."""
        mine, base = self.row.entries.get((task, metric)), self.baseline.entries.get((task, metric))
        if mine is None or base is None or mine.mean is None or base.mean is None:
            return None
        return mine.mean - base.mean


def backbone_names(tables: list[Table]) -> list[str]:
    """The backbones with a row in ``tables``, sorted."""
    return sorted({row.backbone for table in tables for row in table.rows})


def add_baseline(tables: list[Table], baseline: str) -> None:
    """Set each table's ``differences``: every other backbone's row minus the baseline's.

    Raises:
        BaselineError: ``baseline`` has no row in any table (the message lists the backbones).
    """
    names = backbone_names(tables)
    if baseline not in names:
        raise BaselineError(f"--baseline {baseline!r}: no such backbone in this leaderboard; its backbones are: "
                            f"{', '.join(names) or '(none)'}")
    for table in tables:
        base = {(row.recipe, row.variant): row for row in table.rows if row.backbone == baseline}
        table.differences = [Difference(row, base[(row.recipe, row.variant)]) for row in table.rows
                             if row.backbone != baseline and (row.recipe, row.variant) in base]
