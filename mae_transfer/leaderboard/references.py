"""Reference numbers (the MAE paper's tables and the recipes' published results), each with its source.

A reference file is YAML::

    sources: {mae: "MAE paper (arXiv 2111.06377), Table 4", ...}
    rows:
      - {task: coco-maskrcnn, recipe: paper, arch: vit_base_patch16, metric: AP_box, value: 50.3,
         pretraining: MAE, source: mae}

Optional row keys: ``protocol`` (classification, default finetune), ``resolution`` (default 224),
``eval`` (default ss). The first MAE row for a key is the one deltas are computed against.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from mae_transfer.matrix.spec.strict_yaml import load_yaml_file

from mae_transfer.matrix.spec.matrix_spec import CLASSIFICATION_TASKS
from mae_transfer.paths import REFERENCES_ROOT

DEFAULT_REFERENCES = REFERENCES_ROOT / "mae_paper.yaml"
# Recipes without their own published numbers are compared with the paper recipe.
REFERENCE_RECIPE = {"reduced": "paper"}


class ReferenceError(ValueError):
    """A reference file is malformed; names the file and the row."""


@dataclass(frozen=True)
class Reference:
    """One published number."""

    task: str
    recipe: str
    arch: str
    metric: str
    value: float
    pretraining: str
    source: str
    protocol: str | None = None
    resolution: int = 224
    eval_mode: str = "ss"

    @property
    def key(self) -> tuple:
        return (self.task, self.recipe, self.arch, self.protocol, self.resolution, self.eval_mode, self.metric)


def reference_key(task: str, recipe: str, arch: str, protocol: str | None, resolution: int, eval_mode: str,
                  metric: str) -> tuple:
    """The lookup key of a cell group's metric (reduced recipes map to the paper's)."""
    return (task, REFERENCE_RECIPE.get(recipe, recipe), arch, protocol, resolution, eval_mode, metric)


def load_references(paths: list[Path] | tuple[Path, ...]) -> list[Reference]:
    """All rows of the given reference files, in file order."""
    rows: list[Reference] = []
    for path in paths:
        try:
            payload = load_yaml_file(Path(path))
        except (OSError, ValueError, yaml.YAMLError) as error:
            raise ReferenceError(f"{path}: cannot read: {error}") from error
        sources = payload.get("sources", {}) if isinstance(payload, dict) else {}
        for index, row in enumerate(payload.get("rows", []) if isinstance(payload, dict) else []):
            where = f"{path}: rows[{index}]"
            try:
                task = row["task"]
                source = sources.get(row["source"], row["source"])
                protocol = row.get("protocol", "finetune" if task in CLASSIFICATION_TASKS else None)
                rows.append(Reference(
                    task=task, recipe=row["recipe"], arch=row["arch"], metric=row["metric"], value=float(row["value"]),
                    pretraining=row.get("pretraining", "MAE"), source=source, protocol=protocol,
                    resolution=int(row.get("resolution", 224)), eval_mode=row.get("eval", "ss"),
                ))
            except (KeyError, TypeError, ValueError) as error:
                raise ReferenceError(f"{where}: expected task, recipe, arch, metric, value, source ({error})") from error
    return rows


def reference_index(references: list[Reference]) -> dict[tuple, Reference]:
    """The first MAE reference per key (what deltas are computed against)."""
    index: dict[tuple, Reference] = {}
    for reference in references:
        if reference.pretraining == "MAE":
            index.setdefault(reference.key, reference)
    return index
