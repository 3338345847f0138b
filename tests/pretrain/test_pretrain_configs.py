"""Every pre-training config loads, builds (encoder depth cut) and says what it is; values carry the recipe."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DATASETS, HOOKS, METRICS, MODELS, PARAM_SCHEDULERS, TRANSFORMS
from pretrain_helpers import REPO, SMOKE_PRETRAIN

import mae_transfer.integrations.pretrain  # noqa: F401  (registers the task)

RECIPES = sorted(p for p in (REPO / "configs" / "pretrain").glob("*.py") if p != SMOKE_PRETRAIN)
ARCHS = {"vit-base-p16": "vit_base_patch16", "vit-large-p16": "vit_large_patch16", "vit-huge-p14": "vit_huge_patch14"}


def _build(cfg: Config) -> None:
    model_cfg = {**cfg.model, "encoder": {**cfg.model.encoder, "depth": 2}}  # the width, 2 blocks
    model = MODELS.build(model_cfg)
    wrapper_cfg = dict(cfg.optim_wrapper)
    if wrapper_cfg["type"] == "AmpOptimWrapper":  # asserts a GPU at build; the same optimizer otherwise
        wrapper_cfg["type"] = "OptimWrapper"
        wrapper_cfg.pop("loss_scale", None)
        wrapper_cfg.pop("dtype", None)
    wrapper = build_optim_wrapper(model, wrapper_cfg)
    assert [group["weight_decay"] for group in wrapper.optimizer.param_groups] == [0.0, 0.05]
    for scheduler in cfg.param_scheduler:
        PARAM_SCHEDULERS.build(scheduler, default_args=dict(optimizer=wrapper, epoch_length=10))
    for loader in ("train_dataloader", "val_dataloader"):
        DATASETS.build({**cfg[loader].dataset, "lazy_init": True})
        for step in cfg[loader].dataset.pipeline:
            TRANSFORMS.build(step)
    METRICS.build(cfg.val_evaluator)
    for hook in cfg.custom_hooks:
        HOOKS.build(hook)


def test_every_size_and_schedule_has_a_recipe() -> None:
    assert {p.stem for p in RECIPES} == {
        f"mae_{arch}_normpix-amp-{epochs}e_in1k-224" for arch in ARCHS for epochs in (800, 1600)
    }


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_follows_table_8_and_pretrain_md(path: Path) -> None:
    cfg = Config.fromfile(str(path))
    arch, recipe, dataset = path.stem.removeprefix("mae_").split("_")
    epochs = int(re.search(r"(\d+)e$", recipe).group(1))
    assert cfg.model.arch == ARCHS[arch] and cfg.model.encoder.img_size == int(dataset.rsplit("-", 1)[1]) == 224
    assert cfg.model.norm_pix_loss is ("normpix" in recipe) and cfg.model.mask_ratio == 0.75
    assert dict(cfg.model.decoder) == {"embed_dim": 512, "depth": 8, "num_heads": 16, "mlp_ratio": 4.0}
    assert ("-amp-" in recipe) == (cfg.optim_wrapper.type == "AmpOptimWrapper")
    assert cfg.train_cfg.max_epochs == epochs == cfg.param_scheduler[-1].end
    warmup, cosine = cfg.param_scheduler
    assert warmup.end == cosine.begin == 40 and cosine.eta_min == 0.0
    optimizer = cfg.optim_wrapper.optimizer
    assert optimizer.type == "AdamW" and tuple(optimizer.betas) == (0.9, 0.95) and optimizer.weight_decay == 0.05
    batch = cfg.train_dataloader.batch_size * 64 * cfg.optim_wrapper.accumulative_counts  # 64 GPUs
    assert batch == 4096 and optimizer.lr == pytest.approx(1.5e-4 * batch / 256)
    crop = cfg.train_dataloader.dataset.pipeline[1]
    assert tuple(crop.scale) == (0.2, 1.0) and crop.auto_augment is None and crop.re_prob == 0.0
    assert crop.interpolation == "bicubic" and crop.hflip == 0.5
    hook = cfg.custom_hooks[0]
    assert hook.type == "MAETransferOfficialCheckpointHook" and max(hook.save_epochs) == epochs
    assert cfg.train_dataloader.dataset.data_prefix.img_path == "train"


@pytest.mark.parametrize("path", [*RECIPES, SMOKE_PRETRAIN], ids=lambda p: p.stem)
def test_config_builds_on_cpu(path: Path) -> None:
    _build(Config.fromfile(str(path)))


def test_smoke_config_documents_its_override_keys() -> None:
    text = SMOKE_PRETRAIN.read_text()
    cfg = Config.fromfile(str(SMOKE_PRETRAIN))
    for key in ("train_dataloader.dataset.data_root", "val_dataloader.dataset.data_root", "model.mask_ratio",
                "model.norm_pix_loss", "model.decoder.depth", "train_cfg.max_epochs", "custom_hooks.0.save_epochs"):
        assert key in text
        node = cfg
        for part in key.split("."):
            node = node[int(part)] if part.isdigit() else node[part]
    assert cfg.optim_wrapper.type == "OptimWrapper" and cfg.model.encoder.depth == 4
    assert cfg.model.arch == "vit_tiny_patch16" and cfg.model.encoder.img_size == 64
