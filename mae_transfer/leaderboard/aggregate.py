"""Aggregate cell outcomes over seeds into the paper's Table 4/5/6 layout.

A row is (backbone, arch, recipe, variant); a column is (task, metric). Each entry holds the
mean and sample standard deviation over the seeds that finished (n shown), how many seeds
failed or are missing, the reference number and the delta to it. Nothing planned is dropped.

A row carries its backbone's pre-training (`pretrain_setting`); an entry gets a delta only against a
reference row of the same pre-training, and otherwise keeps the nearest reference, not comparable
(shown beside it without a delta).

A cell trained at another batch or lr than its recipe's (``off_recipe`` in its plan and its
result's provenance) gets its own row (the variant names the batch or lr) and its entries are
marked off-recipe, with the reason, so it is never averaged with or mistaken for the recipe.

Pre-training cells (task ``mae-pretrain``) have their own table, one row per stage and
parameters; a task no paper table lays out gets a plain table of its own (never dropped).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from mae_transfer.leaderboard.collect import CellOutcome, Collection
from mae_transfer.leaderboard.pretrain_setting import PretrainSetting, declared_settings, recipe_of, setting_of_stage
from mae_transfer.leaderboard.references import Reference, match_reference, reference_index, reference_key
from mae_transfer.matrix.plan.planner import Cell
from mae_transfer.matrix.spec.matrix_spec import TRANSFER_CLASSIFICATION_TASKS
from mae_transfer.models.archs import ARCHS


PRETRAIN_TASK = "mae-pretrain"


@dataclass(frozen=True)
class TableLayout:
    """One of the paper's tables: a title and its (task, metric, header) columns.

    ``percent``: the metrics are percentages (charted against the paper's); ``decimals``: shown digits.
    """

    key: str
    title: str
    columns: tuple[tuple[str, str, str], ...]
    percent: bool = True
    decimals: int = 2


LAYOUTS = (
    # the pre-training cells of a matrix's pre-training stages (one row per stage and parameters)
    TableLayout("pretrain", "MAE pre-training: held-out masked-patch loss (lower is better)",
                ((PRETRAIN_TASK, "masked_patch_loss", "masked-patch loss ↓"),), percent=False, decimals=4),
    TableLayout("table4", "Table 4: COCO object detection and instance segmentation (Mask R-CNN, ViT + FPN)",
                (("coco-maskrcnn", "AP_box", "AP box"), ("coco-maskrcnn", "AP_mask", "AP mask"))),
    TableLayout("table5", "Table 5: ADE20K semantic segmentation (UperNet)", (("ade20k-upernet", "mIoU", "mIoU"),)),
    TableLayout("table6", "Table 6: transfer to classification (top-1)",
                tuple((task, "top1", task.replace("inat", "iNat").replace("places", "Places"))
                      for task in TRANSFER_CLASSIFICATION_TASKS)),
    # one row per protocol (the row's variant): fine-tuning (Table 3, 448 included), linear probing
    # (Table 12, Table 10 recipe) and partial fine-tuning (Fig. 9)
    TableLayout("imagenet", "ImageNet-1K: fine-tuning (Table 3), linear probing (Table 12), partial fine-tuning "
                "(Fig. 9), top-1", (("imagenet", "top1", "IN-1K top-1"), ("imagenet", "top5", "IN-1K top-5"))),
)


@dataclass
class Entry:
    """One table entry: a metric of a (row, task) over its seeds."""

    values: list[float] = field(default_factory=list)
    planned: int = 0
    failed: int = 0
    blocked: int = 0
    missing: int = 0
    running: int = 0
    interrupted: int = 0
    reference: Reference | None = None
    comparable: bool = False  # the reference reports the row's pre-training (else: the nearest one, no delta)
    off_recipe: bool = False

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) > 1 else None

    @property
    def delta(self) -> float | None:
        """Mean minus the reference, only against a reference of the same pre-training."""
        if self.mean is None or self.reference is None or not self.comparable:
            return None
        return self.mean - self.reference.value


@dataclass
class Row:
    """A backbone under one recipe and variant, with its entries and provenance."""

    backbone: str
    arch: str
    recipe: str
    variant: str
    entries: dict[tuple[str, str], Entry] = field(default_factory=dict)
    provenance: dict[str, set] = field(default_factory=lambda: {k: set() for k in PROVENANCE})
    off_recipe: list[str] = field(default_factory=list)
    families: set[str] = field(default_factory=set)
    pretrain: PretrainSetting | None = None  # how the backbone was pre-trained (None: a pre-training row)

    @property
    def label(self) -> str:
        """The backbone's name, with its ViT family when it is not MAE's (from the runs' load reports)."""
        shown = sorted(self.families - {"mae"})
        return f"{self.backbone} ({', '.join(shown)})" if shown else self.backbone

    @property
    def arch_label(self) -> str:
        return ARCHS[self.arch].label if self.arch in ARCHS else self.arch


PROVENANCE = ("eval_mode", "checkpoint_policy", "effective_batch", "gpus", "git_commit")


@dataclass
class ReferenceRow:
    """The references shown for one (arch, recipe, variant) and pre-training, by (task, metric)."""

    arch: str
    recipe: str
    variant: str
    pretrain: PretrainSetting | None
    found: dict[tuple[str, str], Reference] = field(default_factory=dict)


@dataclass
class Table:
    """A laid-out table with its rows and the reference rows for the archs it shows."""

    layout: TableLayout
    rows: list[Row]
    references: list[ReferenceRow]
    differences: list = field(default_factory=list)  # `baseline.Difference` rows, set by `baseline.add_baseline`


def variant_of(protocol: str | None, resolution: int, eval_mode: str, off_recipe: str = "") -> str:
    """A short text for what distinguishes rows beyond backbone and recipe."""
    parts = [protocol] if protocol else []
    if resolution != 224:
        parts.append(f"{resolution}px")
    if eval_mode != "ss":
        parts.append(eval_mode)
    if off_recipe:
        parts.append(off_recipe)
    return " ".join(parts)


def off_recipe_variant(cell: Cell) -> str:
    """What an off-recipe cell changed, for its row's variant (empty for a recipe cell)."""
    if not cell.off_recipe:
        return ""
    parts = []
    if cell.effective_batch != cell.recipe_batch:
        parts.append(f"batch {cell.effective_batch}")
    rule = None if cell.recipe_lr is None else cell.recipe_lr * (cell.effective_batch or 0) / (cell.recipe_batch or 1)
    if cell.lr is not None and (rule is None or not math.isclose(cell.lr, rule, rel_tol=1e-9)):
        parts.append(f"lr {cell.lr:g}")
    return " ".join(parts) or "off-recipe"


def pretrain_of(outcome: CellOutcome) -> dict | None:
    """A cell's pre-training coordinates (``Cell.pretrain``, else its result's ``cell.pretrain``), or None."""
    return outcome.cell.pretrain or ((outcome.result or {}).get("cell") or {}).get("pretrain")


def params_text(pretrain: dict | None) -> str:
    """The pre-training parameters of a cell as ``name=value`` words (empty when there are none)."""
    params = (pretrain or {}).get("params") or {}
    return " ".join(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
                    for name, value in sorted(params.items()))


def _off_recipe_reason(outcome: CellOutcome) -> str:
    """Why a cell is off-recipe (its result's provenance, else its plan); empty when it is not."""
    provenance = (outcome.result or {}).get("provenance", {}) if outcome.status == "done" else {}
    if provenance.get("off_recipe"):
        return str(provenance.get("off_recipe_reason") or "off-recipe")
    if outcome.cell.off_recipe:
        return outcome.cell.off_recipe_reason or "off-recipe"
    return ""


def tally(entry: Entry, outcome: CellOutcome, metric: str) -> None:
    """Count one seed of ``entry``: its value, or why it has none (a done cell without the metric: missing)."""
    entry.planned += 1
    if outcome.status == "done" and metric in outcome.result["metrics"]:
        entry.values.append(float(outcome.result["metrics"][metric]))
    elif outcome.status == "done":
        entry.missing += 1
    else:
        setattr(entry, outcome.status, getattr(entry, outcome.status) + 1)


def extra_layouts(collection: Collection) -> list[TableLayout]:
    """A plain table for each task no paper table lays out, its columns the metrics its results hold."""
    covered = {task for layout in LAYOUTS for task, _, _ in layout.columns}
    metrics: dict[str, set[str]] = {}
    for outcome in collection.outcomes:
        if outcome.cell.task not in covered:
            found = metrics.setdefault(outcome.cell.task, set())
            if outcome.status == "done":
                found.update(outcome.result["metrics"])
    return [TableLayout(f"task:{task}", f"{task} (no paper table)",
                        tuple((task, metric, metric) for metric in sorted(names or {"result"})))
            for task, names in sorted(metrics.items())]


def build_tables(collection: Collection, references: list[Reference], generated: tuple[str, ...] = ()) -> list[Table]:
    """The paper's tables for every task present in the collection (a plain one for other tasks).

    ``generated``: the backbones whose checkpoint the matrix generates (random, no pre-training).
    """
    index = reference_index(references)
    settings = Settings(declared_settings(collection.outcomes, generated),
                        {o.cell.id: recipe_of(o.cell) for o in collection.outcomes if o.cell.task == PRETRAIN_TASK})
    tables = []
    for layout in (*LAYOUTS, *extra_layouts(collection)):
        table = _build_table(layout, collection, index, settings)
        if table is not None:
            tables.append(table)
    return tables


@dataclass(frozen=True)
class Settings:
    """What places a cell's pre-training: the declared backbones' settings (by name) and the recipes of
    the pre-training cells in the collection (by cell id)."""

    declared: dict[str, PretrainSetting]
    pretrain_recipes: dict[str, str]

    def of(self, outcome: CellOutcome) -> PretrainSetting:
        """How a transfer cell's backbone was pre-trained: its stage's setting, else its declared checkpoint's."""
        pretrain = pretrain_of(outcome)
        if pretrain:
            return setting_of_stage(pretrain, self.pretrain_recipes.get(str(pretrain.get("cell"))))
        return (self.declared.get(outcome.cell.backbone)
                or PretrainSetting(unknown="a backbone this leaderboard cannot place"))


def _build_table(layout: TableLayout, collection: Collection, index: dict[tuple, list[Reference]],
                 settings: Settings) -> Table | None:
    """One table over the outcomes of its tasks; None when the collection has none."""
    tasks = {task for task, _, _ in layout.columns}
    rows: dict[tuple, Row] = {}
    for outcome in collection.outcomes:
        cell = outcome.cell
        if cell.task not in tasks:
            continue
        variant = variant_of(cell.protocol, cell.resolution, cell.eval_mode, off_recipe_variant(cell))
        if cell.task == PRETRAIN_TASK:  # a pre-training row is told apart by its parameters
            variant = " ".join(filter(None, [params_text(pretrain_of(outcome)), variant]))
        if not outcome.planned:  # a result the current plan does not hold: never merged with a planned one
            variant = " ".join(filter(None, [variant, f"not planned ({cell.id[:10]})"]))
        row = rows.setdefault((cell.backbone, cell.arch, cell.recipe, variant),
                              Row(cell.backbone, cell.arch, cell.recipe, variant,
                                  pretrain=None if cell.task == PRETRAIN_TASK else settings.of(outcome)))
        reason = _off_recipe_reason(outcome)
        if reason and reason not in row.off_recipe:
            row.off_recipe.append(reason)
        for task, metric, _ in layout.columns:
            if task != cell.task:
                continue
            entry = row.entries.setdefault((task, metric), Entry())
            if row.pretrain is not None:
                candidates = index.get(reference_key(task, cell.recipe, cell.arch, cell.protocol, cell.resolution,
                                                     cell.eval_mode, metric), [])
                entry.reference, entry.comparable = match_reference(candidates, row.pretrain)
            entry.off_recipe = entry.off_recipe or bool(reason)
            tally(entry, outcome, metric)
        if outcome.status == "done":
            provenance = outcome.result["provenance"]
            load = provenance.get("load_report") or {}
            family = load.get("model_family") or load.get("family")
            if isinstance(family, str):
                row.families.add(family)
            for key in PROVENANCE:
                value = provenance.get(key)
                if key == "git_commit" and value:
                    value = str(value)[:7] + ("+dirty" if provenance.get("git_dirty") else "")
                if value is not None:
                    row.provenance[key].add(str(value))
    if not rows:
        return None
    shown: dict[tuple, ReferenceRow] = {}
    for row in rows.values():
        for (task, metric), entry in row.entries.items():
            reference = entry.reference
            if reference is not None:
                group = shown.setdefault((row.arch, row.recipe, row.variant, reference.pretrain),
                                         ReferenceRow(row.arch, row.recipe, row.variant, reference.pretrain))
                group.found.setdefault((task, metric), reference)
    return Table(layout, list(rows.values()), list(shown.values()))
