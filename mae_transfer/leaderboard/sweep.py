"""Transfer results along a swept pre-training parameter: the paper's Fig. 5 (mask ratio) and Fig. 7
(schedule length) as tables.

``leaderboard --along PARAM`` takes the transfer cells whose pre-training (``Cell.pretrain``)
names PARAM: one table per stage and per setting of the other parameters (held equal), one row
per value of PARAM (numeric order), one column per task metric, each entry the mean ± std over
seeds as in the paper tables. ``epochs`` is what the evaluated checkpoint was pre-trained for
(``pretrain["epoch"]``). Every Fig. 7 point is a full schedule of its own (the figure's caption), which
a stage's ``sweep: {epochs: [...]}`` reproduces: such a row reads ``full 800-epoch schedule``. An
``evaluate_epochs`` checkpoint taken before the end of its schedule is a snapshot of one cosine
schedule, not a Fig. 7 point, and reads ``snapshot at epoch 400 of an 800-epoch schedule`` (along
another parameter, that schedule is held like the other parameters: ``schedule=800``).
Pre-training cells are not rows (their loss is in the pre-training table), and there are no
reference numbers: the reference files hold none for sweeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mae_transfer.leaderboard.aggregate import (LAYOUTS, PRETRAIN_TASK, Entry, off_recipe_variant, pretrain_of, tally,
                                                variant_of)
from mae_transfer.leaderboard.collect import CellOutcome, Collection
from mae_transfer.leaderboard.pretrain_setting import article

EPOCHS = "epochs"


class SweepError(ValueError):
    """No cell has the swept parameter; names the parameters the cells do have."""


@dataclass(frozen=True)
class SweepColumn:
    """A task metric of a sweep table, under one recipe and variant."""

    task: str
    recipe: str
    variant: str
    metric: str
    header: str


@dataclass
class SweepRow:
    """One value of the swept parameter, with its entries by column."""

    value: Any
    label: str
    entries: dict[SweepColumn, Entry] = field(default_factory=dict)


@dataclass
class SweepTable:
    """A stage's results along ``param`` with the other parameters at ``fixed``."""

    stage: str
    param: str
    fixed: dict[str, Any]
    columns: list[SweepColumn]
    rows: list[SweepRow]

    @property
    def label(self) -> str:
        """The stage and the held parameters, e.g. ``mae_tiny (decoder_depth=8 epochs=100)``."""
        fixed = dict(self.fixed)
        snapshot = []
        if "schedule" in fixed and EPOCHS in fixed:  # held checkpoints taken before the end of their schedule
            snapshot = [epochs_label(fixed.pop(EPOCHS), fixed.pop("schedule"))]
        held = " ".join([*(f"{name}={value_text(value)}" for name, value in sorted(fixed.items())), *snapshot])
        return self.stage + (f" ({held})" if held else "")

    @property
    def title(self) -> str:
        return f"{self.param} sweep: stage {self.label}"


def value_text(value: Any) -> str:
    """A parameter value as shown (floats without trailing zeros)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def value_order(value: Any) -> tuple:
    """Sort key: numbers (and numeric strings, booleans) in numeric order, then the rest by text."""
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))


def coordinates(pretrain: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """(parameters of a transfer cell's pre-training, the full schedule when the checkpoint is earlier).

    ``epochs`` becomes the checkpoint's epoch when the cell records one.
    """
    params = dict(pretrain.get("params") or {})
    schedule = params.get(EPOCHS)
    if pretrain.get("epoch") is not None:
        params[EPOCHS] = pretrain["epoch"]
    return params, (schedule if schedule is not None and schedule != params.get(EPOCHS) else None)


def epochs_label(epoch: Any, schedule: Any) -> str:
    """A row along ``epochs``: a full schedule (a Fig. 7 point), or a snapshot of a longer one."""
    if schedule is None:
        return f"full {value_text(epoch)}-epoch schedule"
    return f"snapshot at epoch {value_text(epoch)} of {article(schedule)} {value_text(schedule)}-epoch schedule"


def _columns_of(task: str, outcome: CellOutcome) -> list[tuple[str, str]]:
    """(metric, header) of a task: its paper-table columns, else the metrics its result holds."""
    laid_out = [(metric, f"{task} {metric}") for layout in LAYOUTS for name, metric, _ in layout.columns if name == task]
    found = sorted(outcome.result["metrics"]) if outcome.status == "done" else []
    return laid_out or [(metric, f"{task} {metric}") for metric in found]


def build_sweeps(collection: Collection, param: str) -> list[SweepTable]:
    """The sweep tables of ``param``, by stage then by the other parameters.

    Raises:
        SweepError: no transfer cell's pre-training has ``param`` (the message lists those it has).
    """
    tables: dict[tuple, SweepTable] = {}
    rows: dict[tuple, dict[tuple, SweepRow]] = {}
    seen: set[str] = set()
    for outcome in collection.outcomes:
        pretrain = pretrain_of(outcome)
        if not pretrain or outcome.cell.task == PRETRAIN_TASK:
            continue
        params, schedule = coordinates(pretrain)
        seen.update(params)
        if param not in params:
            continue
        value = params.pop(param)
        label = value_text(value)
        if param == EPOCHS:
            label = epochs_label(value, schedule)
        elif schedule is not None:  # an earlier checkpoint: held like the other parameters
            params["schedule"] = schedule
        if not outcome.planned:
            label += f" not planned ({outcome.cell.id[:10]})"
        stage = str(pretrain.get("stage", outcome.cell.backbone))
        key = (stage, tuple(sorted((name, value_order(v)) for name, v in params.items())))
        table = tables.setdefault(key, SweepTable(stage, param, params, [], []))
        row = rows.setdefault(key, {}).setdefault((value_order(value), label), SweepRow(value, label))
        cell = outcome.cell
        # as the paper tables tell rows apart (an off-recipe cell is never averaged with the recipe's)
        variant = variant_of(cell.protocol, cell.resolution, cell.eval_mode, off_recipe_variant(cell))
        for metric, header in _columns_of(cell.task, outcome):
            column = SweepColumn(cell.task, cell.recipe, variant, metric, header)
            if column not in table.columns:
                table.columns.append(column)
            tally(row.entries.setdefault(column, Entry()), outcome, metric)
    if not tables:
        named = ", ".join(sorted(seen)) if seen else "(no cell of this matrix comes from a pre-training stage)"
        raise SweepError(f"--along {param!r}: no transfer cell's pre-training has this parameter; the parameters "
                         f"the cells have: {named}")
    for key, table in tables.items():
        table.rows = [rows[key][order] for order in sorted(rows[key])]
        _disambiguate(table)
    return [tables[key] for key in sorted(tables)]


def _disambiguate(table: SweepTable) -> None:
    """Name the recipe and variant in the header of a task shown under more than one."""
    settings: dict[str, set] = {}
    for column in table.columns:
        settings.setdefault(column.task, set()).add((column.recipe, column.variant))
    renamed = {}
    for column in table.columns:
        if len(settings[column.task]) > 1:
            extra = " ".join(filter(None, [column.recipe, column.variant]))
            renamed[column] = SweepColumn(column.task, column.recipe, column.variant, column.metric,
                                          f"{column.header} ({extra})")
    if renamed:
        table.columns = [renamed.get(column, column) for column in table.columns]
        for row in table.rows:
            row.entries = {renamed.get(column, column): entry for column, entry in row.entries.items()}
