"""The recipe table agrees with every shipped config: lr and schedule length, and a batch the config can split."""

from __future__ import annotations

from pathlib import Path

import pytest

from mae_transfer.matrix.spec.recipes import Recipe, recipe_for
from mae_transfer.matrix.spec.matrix_spec import CLASSIFICATION_TASKS, TASK_RECIPES
from mae_transfer.matrix.spec.tasks import config_path
from mae_transfer.models.archs import ARCHS

REPO = Path(__file__).resolve().parents[2]
# Li et al. 2021 (the COCO "paper" recipe) trains at lr 8e-5 (Sec. 4.2); the shipped A.3 configs
# still carry the ViTDet optimizer (1e-4) until the COCO recipe rewrite of issue 10 item 4 lands.
def _cases() -> list:
    cases = {}
    for task, recipes in TASK_RECIPES.items():
        for recipe in recipes:
            for arch in ARCHS:
                for resolution in (224, 448):
                    finetune = config_path(task, recipe, arch, "finetune", resolution, "ss")
                    protocols = ("finetune", "linear", "partial-1", "partial-mlp") if task in CLASSIFICATION_TASKS else (None,)
                    for protocol in protocols:
                        path = REPO / config_path(task, recipe, arch, protocol, resolution, "ss")
                        # a linear or partial cell has its own recipe only where it has its own config
                        if path.is_file() and (protocol == "finetune" or protocol is None or path != REPO / finetune):
                            cases.setdefault((path, recipe_for(task, recipe, arch, protocol, resolution)), task)
    params = []
    for (path, recipe), task in cases.items():
        params.append(pytest.param(path, recipe, id=f"{task}:{path.name}"))
    return params


@pytest.mark.parametrize(("config", "recipe"), _cases())
def test_config_trains_with_its_recipe_lr_and_length(config: Path, recipe: Recipe) -> None:
    pytest.importorskip("mmdet")
    pytest.importorskip("mmseg")
    from mmengine.config import Config

    cfg = Config.fromfile(str(config), import_custom_modules=False)
    per_gpu = cfg.train_dataloader.batch_size
    length = cfg.train_cfg.max_iters if recipe.loop == "iter" else cfg.train_cfg.max_epochs
    assert (cfg.optim_wrapper.optimizer.lr, length) == (pytest.approx(recipe.lr, rel=1e-9), recipe.length)
    assert recipe.batch % per_gpu == 0, f"{config}: per-GPU batch {per_gpu} cannot reach the recipe batch {recipe.batch}"


def test_linear_scaling_rule_matches_maes_blr_rule() -> None:
    finetune = recipe_for("inat2017", "paper", "vit_base_patch16")
    assert finetune.lr_at(512) == pytest.approx(5e-4 * 512 / 256)  # FINETUNE.md: lr = blr x batch / 256
    linear = recipe_for("places365", "paper", "vit_large_patch16", protocol="linear")
    assert (linear.batch, linear.lr, linear.max_per_gpu) == (16384, pytest.approx(0.1 * 16384 / 256), 512)


@pytest.mark.parametrize(("task", "recipe", "arch", "expected"), [
    ("coco-maskrcnn", "vitdet", "vit_base_patch16", (64, 1e-4, 4, 184375)),
    ("coco-maskrcnn", "vitdet", "vit_huge_patch14", (64, 1e-4, 1, 184375 * 3 // 4)),
    ("coco-maskrcnn", "paper", "vit_large_patch16", (64, 8e-5, 1, 184375)),
    ("coco-maskrcnn", "reduced", "vit_base_patch16", (32, 5e-5, 4, 92412)),
    ("ade20k-upernet", "paper", "vit_large_patch16", (16, 1e-4, 2, 160000)),
    ("inat2019", "paper", "vit_huge_patch14", (1024, 4e-3, 16, 50)),
])
def test_declared_values(task: str, recipe: str, arch: str, expected: tuple) -> None:
    found = recipe_for(task, recipe, arch)
    assert (found.batch, found.lr, found.max_per_gpu, found.length) == expected
    assert found.source and found.per_gpu_source


def test_448_recipe_keeps_the_batch_with_a_smaller_per_gpu_batch() -> None:
    high = recipe_for("places205", "paper", "vit_huge_patch14", resolution=448)
    assert (high.batch, high.lr, high.max_per_gpu, high.length) == (1024, 4e-3, 8, 50)
