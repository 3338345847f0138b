"""The task table agrees with the configs: every planned override key exists in its config."""

from __future__ import annotations

from pathlib import Path

import pytest

from mae_transfer.matrix.plan.overrides import missing_keys
from mae_transfer.matrix.spec.matrix_spec import TASK_RECIPES
from mae_transfer.matrix.spec.tasks import TASKS, config_path
from mae_transfer.models.archs import ARCHS

REPO = Path(__file__).resolve().parents[2]


def _configs() -> list[tuple[str, str, Path]]:
    found = {}
    for task, recipes in TASK_RECIPES.items():
        for recipe in recipes:
            for arch in ARCHS:
                for resolution in (224, 448):
                    for eval_mode in ("ss", "ms+flip"):
                        path = REPO / config_path(task, recipe, arch, "finetune", resolution, eval_mode)
                        if path.is_file():
                            found[(task, recipe, path)] = None
    return list(found)


def test_smoke_configs_exist_for_every_task_kind() -> None:
    smoke = {task for task, recipe, _ in _configs() if recipe == "smoke"}
    assert {"coco-maskrcnn", "inat2017", "places365"} <= smoke


@pytest.mark.parametrize(("task", "recipe", "config"), _configs(), ids=lambda v: getattr(v, "name", v))
def test_override_keys_exist_in_config(task: str, recipe: str, config: Path) -> None:
    pytest.importorskip("mmengine")
    profile = TASKS[task]
    keys = [*profile.checkpoint_keys, *(key for key, _ in profile.data_keys_for(recipe))]
    assert missing_keys(config, keys) == []


@pytest.mark.parametrize("arch", ["vit_base_patch16", "vit_large_patch16"])
def test_ms_flip_test_configs_take_the_test_data_keys(arch: str) -> None:
    pytest.importorskip("mmengine")
    from mae_transfer.matrix.spec.tasks import test_config_path

    config = REPO / test_config_path("ade20k-upernet", arch, "ms+flip")
    keys = [key for key, _ in TASKS["ade20k-upernet"].data_keys if key.startswith("test_")]
    assert keys and missing_keys(config, keys) == []
