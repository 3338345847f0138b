"""The task table agrees with the configs: every planned override key exists in its config."""

from __future__ import annotations

from pathlib import Path

import pytest

from mae_transfer.matrix.plan.overrides import missing_keys, override_key_problem
from mae_transfer.matrix.spec.matrix_spec import TASK_RECIPES
from mae_transfer.matrix.spec.tasks import (
    CONFIG_ARCHS,
    PROBE_PROTOCOLS,
    TASKS,
    arch_options,
    config_path,
    has_probe_config,
    protocol_options,
)
from mae_transfer.models.archs import ARCHS

REPO = Path(__file__).resolve().parents[2]


def _configs() -> list[tuple[str, str, str, Path]]:
    found = {}
    for task, recipes in TASK_RECIPES.items():
        for recipe in recipes:
            for protocol in ("finetune", *PROBE_PROTOCOLS):
                if protocol in PROBE_PROTOCOLS and not has_probe_config(task, recipe, protocol):
                    continue
                for arch in ARCHS:
                    for resolution in (224, 448):
                        for eval_mode in ("ss", "ms+flip"):
                            path = REPO / config_path(task, recipe, arch, protocol, resolution, eval_mode)
                            if path.is_file():
                                found.setdefault((task, recipe, path), protocol)
    return [(task, recipe, protocol, path) for (task, recipe, path), protocol in found.items()]


def test_smoke_configs_exist_for_every_task_kind() -> None:
    smoke = {task for task, recipe, _, _ in _configs() if recipe == "smoke"}
    assert {"coco-maskrcnn", "inat2017", "places365"} <= smoke


@pytest.mark.parametrize(("task", "recipe", "protocol", "config"), _configs(), ids=lambda v: getattr(v, "name", v))
def test_override_keys_exist_in_config(task: str, recipe: str, protocol: str, config: Path) -> None:
    """The planned keys exist (a probe's protocol and feature cache too: the cell runner checks every
    planned key before training); the declarations (and a patch-14 arch) are keywords the backbone
    takes, not typos."""
    mmengine = pytest.importorskip("mmengine")
    profile = TASKS[task]
    keys = [*profile.checkpoint_keys, *(key for key, _ in profile.data_keys_for(recipe))]
    cfg = mmengine.Config.fromfile(str(config)).to_dict()
    assert [key for key in keys if override_key_problem(cfg, key) or not _has(cfg, key)] == []
    planned = [*protocol_options(protocol), *(["probe.cache_root"] if protocol in PROBE_PROTOCOLS else [])]
    assert [problem for key in planned if (problem := override_key_problem(cfg, key))] == []
    declared = [*profile.family_keys.values(), *arch_options(task, "vit_base_patch14")]
    assert [problem for key in declared if (problem := override_key_problem(cfg, key))] == []
    backbone = cfg["model"]["backbone"]
    assert backbone["arch"] in CONFIG_ARCHS  # what arch_options compares with
    assert _has(cfg, profile.backbone_key) and not {"family", "activation", "norm_eps"} & set(backbone)


def _has(cfg: dict, key: str) -> bool:
    node = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


@pytest.mark.parametrize("arch", ["vit_base_patch16", "vit_large_patch16"])
def test_ms_flip_test_configs_take_the_test_data_keys(arch: str) -> None:
    pytest.importorskip("mmengine")
    from mae_transfer.matrix.spec.tasks import test_config_path

    config = REPO / test_config_path("ade20k-upernet", arch, "ms+flip")
    keys = [key for key, _ in TASKS["ade20k-upernet"].data_keys if key.startswith("test_")]
    assert keys and missing_keys(config, keys) == []
