"""Reference numbers (the MAE paper's tables and the recipes' published results), each with its source
and the pre-training it reports.

A reference file is YAML::

    sources: {mae: "MAE paper (arXiv 2111.06377), Table 4", ...}
    pretrainings:                       # optional: named settings the rows may refer to
      table1_default: {epochs: 800, target: pixel, mask_ratio: 0.75, decoder_depth: 8, decoder_width: 512,
                       released: false}
    rows:
      - {task: coco-maskrcnn, recipe: paper, arch: vit_base_patch16, metric: AP_box, value: 50.3,
         pretraining: MAE, pretrain: released, source: mae}

``pretraining`` is the method (default MAE). An MAE row must say what pre-training it reports in
``pretrain``: ``released`` (the official MAE release, `pretrain_setting.RELEASED`), a name from the
file's ``pretrainings``, or a mapping of all six facets (epochs, target ``norm-pix`` or ``pixel``,
mask_ratio, decoder_depth, decoder_width, released). Optional row keys: ``protocol`` (classification,
default finetune), ``resolution`` (default 224), ``eval`` (default ss), ``note`` (for readers).

A leaderboard entry gets a difference only against the first MAE row of its key with the same
pre-training (`match_reference`); otherwise it shows the nearest row, labelled, without one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mae_transfer.leaderboard.pretrain_setting import FACETS, RELEASED, TARGETS, PretrainSetting
from mae_transfer.matrix.spec.matrix_spec import CLASSIFICATION_TASKS
from mae_transfer.matrix.spec.strict_yaml import load_yaml_file
from mae_transfer.paths import REFERENCES_ROOT

DEFAULT_REFERENCES = REFERENCES_ROOT / "mae_paper.yaml"
# Recipes without their own published numbers are compared with the paper recipe.
REFERENCE_RECIPE = {"reduced": "paper"}
BUILTIN_SETTINGS = {"released": RELEASED}
_ROW_KEYS = ("task", "recipe", "arch", "metric", "value", "source", "pretraining", "pretrain", "protocol",
             "resolution", "eval", "note")


class ReferenceError(ValueError):
    """A reference file is malformed; names the file and the row."""


@dataclass(frozen=True)
class Reference:
    """One published number; ``pretrain`` is the pre-training it reports (None for other methods than MAE)."""

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
    pretrain: PretrainSetting | None = None

    @property
    def key(self) -> tuple:
        return (self.task, self.recipe, self.arch, self.protocol, self.resolution, self.eval_mode, self.metric)


def reference_key(task: str, recipe: str, arch: str, protocol: str | None, resolution: int, eval_mode: str,
                  metric: str) -> tuple:
    """The lookup key of a cell group's metric (reduced recipes map to the paper's)."""
    return (task, REFERENCE_RECIPE.get(recipe, recipe), arch, protocol, resolution, eval_mode, metric)


def parse_setting(raw: Any, where: str, named: dict[str, PretrainSetting]) -> PretrainSetting:
    """A ``pretrain`` value: a name (``released`` or one of the file's ``pretrainings``) or a facet mapping.

    Raises:
        ReferenceError: an unknown name, a missing or extra facet, or a facet of the wrong type.
    """
    if isinstance(raw, str):
        if raw not in named:
            raise ReferenceError(f"{where}: {raw!r} is not a pre-training this file knows; expected one of "
                                 f"{', '.join(named)} or a mapping of {', '.join(FACETS)}")
        return named[raw]
    if not isinstance(raw, dict) or set(raw) != set(FACETS):
        found = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise ReferenceError(f"{where}: expected a pre-training name or a mapping of exactly {', '.join(FACETS)}; "
                             f"got {found}")
    checks = {"epochs": lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
              "target": lambda v: v in TARGETS,
              "mask_ratio": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1,
              "decoder_depth": lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
              "decoder_width": lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
              "released": lambda v: isinstance(v, bool)}
    expected = {"epochs": "a positive integer", "target": f"one of {', '.join(TARGETS)}", "mask_ratio": "in (0, 1)",
                "decoder_depth": "a positive integer", "decoder_width": "a positive integer", "released": "true/false"}
    for name, check in checks.items():
        if not check(raw[name]):
            raise ReferenceError(f"{where}.{name}: expected {expected[name]}, got {raw[name]!r}")
    return PretrainSetting(epochs=raw["epochs"], target=raw["target"], mask_ratio=float(raw["mask_ratio"]),
                           decoder_depth=raw["decoder_depth"], decoder_width=raw["decoder_width"],
                           released=raw["released"])


def _named_settings(path: Path, payload: dict) -> dict[str, PretrainSetting]:
    named = dict(BUILTIN_SETTINGS)
    declared = payload.get("pretrainings") or {}
    if not isinstance(declared, dict):
        raise ReferenceError(f"{path}: pretrainings: expected a mapping of names to pre-training settings")
    for name, raw in declared.items():
        if name in BUILTIN_SETTINGS:
            raise ReferenceError(f"{path}: pretrainings.{name}: {name!r} is built in (the official release); "
                                 "choose another name")
        named[name] = parse_setting(raw, f"{path}: pretrainings.{name}", named)
    return named


def load_references(paths: list[Path] | tuple[Path, ...]) -> list[Reference]:
    """All rows of the given reference files, in file order.

    Raises:
        ReferenceError: a file cannot be read, or a row lacks a key, names an undefined pre-training or
            (an MAE row) none.
    """
    rows: list[Reference] = []
    for path in paths:
        try:
            payload = load_yaml_file(Path(path))
        except (OSError, ValueError, yaml.YAMLError) as error:
            raise ReferenceError(f"{path}: cannot read: {error}") from error
        if not isinstance(payload, dict):
            raise ReferenceError(f"{path}: expected a mapping with sources and rows")
        sources = payload.get("sources", {})
        named = _named_settings(Path(path), payload)
        for index, row in enumerate(payload.get("rows", [])):
            rows.append(_reference(row, f"{path}: rows[{index}]", sources, named))
    return rows


def _reference(row: Any, where: str, sources: dict, named: dict[str, PretrainSetting]) -> Reference:
    if not isinstance(row, dict):
        raise ReferenceError(f"{where}: expected a mapping")
    extra = sorted(set(row) - set(_ROW_KEYS))
    if extra:
        raise ReferenceError(f"{where}: unknown keys {extra}; a row takes {', '.join(_ROW_KEYS)}")
    try:
        task = row["task"]
        method = row.get("pretraining", "MAE")
        setting = None
        if "pretrain" in row:
            setting = parse_setting(row["pretrain"], f"{where}.pretrain", named)
        elif method == "MAE":
            raise ReferenceError(f"{where}.pretrain: missing; an MAE row names the pre-training it reports: "
                                 f"{', '.join(named)}, or a mapping of {', '.join(FACETS)}")
        return Reference(
            task=task, recipe=row["recipe"], arch=row["arch"], metric=row["metric"], value=float(row["value"]),
            pretraining=method, source=sources.get(row["source"], row["source"]),
            protocol=row.get("protocol", "finetune" if task in CLASSIFICATION_TASKS else None),
            resolution=int(row.get("resolution", 224)), eval_mode=row.get("eval", "ss"), pretrain=setting,
        )
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, ReferenceError):
            raise
        raise ReferenceError(f"{where}: expected task, recipe, arch, metric, value, source ({error})") from error


def reference_index(references: list[Reference]) -> dict[tuple, list[Reference]]:
    """Every MAE reference per key, in file order (`match_reference` picks among them)."""
    index: dict[tuple, list[Reference]] = {}
    for reference in references:
        if reference.pretraining == "MAE":
            index.setdefault(reference.key, []).append(reference)
    return index


def match_reference(candidates: list[Reference], setting: PretrainSetting) -> tuple[Reference | None, bool]:
    """(the first candidate of the same pre-training, True), else (the nearest one, False); (None, False) if none.

    Nearest: the fewest differing facets, then file order.
    """
    for reference in candidates:
        if reference.pretrain is not None and setting.matches(reference.pretrain):
            return reference, True
    if not candidates:
        return None, False
    return min(candidates, key=lambda r: setting.distance(r.pretrain) if r.pretrain else len(FACETS) + 1), False
