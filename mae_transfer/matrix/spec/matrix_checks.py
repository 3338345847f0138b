"""Checks over a whole matrix that no single key can fail: how many cells it expands to, the
backbone names its pre-training stages derive, and stage overrides that shadow a stage parameter.

Each would otherwise give a silently wrong result: two backbones under one name are averaged as
seeds of one row, and an override of ``model.mask_ratio`` trains every sweep point at one ratio
while the cells and ``result.json`` record the swept ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from mae_transfer.matrix.spec.pretrain_stage import PARAM_KEYS, PretrainStage, variant_name

# config key -> the stage parameter that sets it (PARAM_KEYS and "epochs"); an override of one of
# them (or of a mapping above it) is refused, set or not: the cells record the parameters' values.
# The seed and the data root are refused by the planner (the root only where datasets.imagenet is
# declared), the keys whose index only the config tells (scheduler, checkpoint hook) by
# `pretrain_stage.variant_options`.
STAGE_OWNED_KEYS: dict[str, str] = {
    **{key: param for param, key in PARAM_KEYS.items()},
    "train_cfg.max_epochs": "epochs",
}

Fail = Callable[[str, str], Exception]


def _overlap(key: str, owned: str) -> bool:
    """``key`` sets ``owned``: the same path, a mapping above it, or a key inside it."""
    return key == owned or owned.startswith(key + ".") or key.startswith(owned + ".")


def check_stage_overrides(stage: PretrainStage, dotted_keys: list[str], fail: Fail) -> None:
    """Refuse a stage override that sets what a stage parameter sets."""
    for key in dotted_keys:
        for owned, owner in STAGE_OWNED_KEYS.items():
            if not _overlap(key, owned):
                continue
            state = ("swept" if owner in stage.sweep else f"set to {stage.params[owner]!r}" if owner in stage.params
                     else "left at the config's value")
            raise fail(f"{stage.key}.overrides.{key}",
                       f"sets {owned}, which the stage's parameter {owner!r} sets ({state}); set {owner!r} instead, "
                       "so that the cells, their names and result.json say what was trained")


def count_cells(backbones: tuple, tasks: tuple, seeds: tuple[int, ...]) -> int:
    """How many cells a matrix expands to (without expanding it): pre-training cells, then every
    task's selected backbones x the checkpoints each stands for x seeds."""
    sources, total = {}, 0
    for backbone in backbones:
        stage = backbone.pretrain
        if stage is None:
            sources[backbone.name] = 1
            continue
        points = math.prod(len(values) for values in stage.sweep.values())
        total += points
        sources[backbone.name] = points * len(set(stage.evaluate_epochs or (0,)))
    for task in tasks:
        selected = task.backbones if task.backbones is not None else tuple(sources)
        total += sum(sources[name] for name in selected) * len(task.seeds or seeds)
    return total


def derived_names(stage: PretrainStage, name: str) -> dict[str, str]:
    """Every backbone name a stage derives (its pre-training cells' and its checkpoints'), with what it is."""
    evaluated = tuple(sorted(set(stage.evaluate_epochs or (0,))))
    names = {}
    for params in stage.variants():
        point = ", ".join(f"{param} {params[param]!r}" for param in stage.sweep)
        at = f" at {point}" if point else ""
        names.setdefault(variant_name(name, stage, params, 0, (0,)), f"its pre-training{at}")
        for epoch in evaluated:
            what = f"its checkpoint{at}" + (f", epoch {epoch}" if len(evaluated) > 1 else "")
            names.setdefault(variant_name(name, stage, params, epoch, evaluated), what)
    return names


def check_backbone_names(backbones: tuple, fail: Fail) -> None:
    """Refuse a name that two backbones give (declared, or derived by a stage), naming both sources."""
    named: dict[str, tuple[str, str]] = {}  # name -> (the backbone's key path, what the name is there)
    for index, backbone in enumerate(backbones):
        key = f"backbones[{index}]"
        names = {backbone.name: "its declared name"}
        if backbone.pretrain is not None:
            names.update({name: what for name, what in derived_names(backbone.pretrain, backbone.name).items()
                          if name != backbone.name})
        for name, what in names.items():
            where = f"{key}.pretrain" if what != "its declared name" else f"{key}.name"
            first = named.setdefault(name, (where, what))
            if first[0].split(".")[0] != key:
                stage = [where, first[0]] if where.endswith(".pretrain") else [first[0], where]
                raise fail(stage[0], f"the backbone name {name!r} comes from both {first[0]} ({first[1]}) and "
                           f"{where} ({what}); two backbones under one name would be averaged as seeds of one "
                           "row: rename one of them")
