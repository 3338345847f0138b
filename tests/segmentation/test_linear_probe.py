"""The frozen linear segmentation probe (BN + 1x1 conv heads at three lrs, chosen on a train
hold-out) learns on the synthetic ADE20K set through the real mmseg Runner (tools/train.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from training_helpers import REPO, run, train_command

CONFIG = REPO / "configs" / "smoke" / "ade20k_linear_probe.py"
PAPER = REPO / "configs" / "ade20k" / "linear-probe_mae-vit-b_8xb2-40k_ade20k-512x512.py"
CONFIGS = [PAPER, CONFIG]


def data_options(root: Path) -> dict[str, object]:
    return {"train_dataloader.dataset.dataset.data_root": root,
            "val_cfg.holdout_dataloader.dataset.dataset.data_root": root,
            "val_dataloader.dataset.data_root": root, "test_dataloader.dataset.data_root": root}


def untrained_miou(root: Path, work_dir: Path) -> float:
    """IoUMetric on val of the seeded, untrained head 0 (the same config, no training)."""
    import torch
    from mmengine.config import Config
    from mmengine.runner import Runner

    cfg = Config.fromfile(str(CONFIG))
    cfg.merge_from_dict({key: str(value) for key, value in data_options(root).items()})
    cfg.work_dir = str(work_dir)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runner = Runner.from_cfg(cfg)
        runner.model.init_weights()
        return float(runner.test()["mIoU"])
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_builds_and_says_what_it_does(path: Path) -> None:
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from mae_transfer.integrations.seg_probe import MAETransferFrozenSegViT, MAETransferLinearSegHead

    cfg = Config.fromfile(str(path))
    init_default_scope("mmseg")
    model = MODELS.build(cfg.model)
    assert isinstance(model.backbone, MAETransferFrozenSegViT) and isinstance(model.decode_head, MAETransferLinearSegHead)
    assert not any(p.requires_grad for p in model.backbone.parameters())
    heads = len(cfg.lr_multipliers)
    assert len(model.decode_head.heads) == heads == len(cfg.val_cfg.lr_multipliers)
    keys = cfg.optim_wrapper.paramwise_cfg.custom_keys
    assert [keys[f"decode_head.heads.{i}."]["lr_mult"] for i in range(heads)] == list(cfg.lr_multipliers)
    assert cfg.train_dataloader.dataset.part == "fit" and cfg.val_cfg.holdout_dataloader.dataset.part == "holdout"
    assert cfg.train_cfg.val_interval == cfg.train_cfg.max_iters  # one validation: val read once
    if path == PAPER:  # the name: ViT-B, 8 GPUs x 2 images, 40k iterations, 512 crops
        assert cfg.model.backbone.arch == "vit_base_patch16" and cfg.train_dataloader.batch_size == 2
        assert cfg.train_cfg.max_iters == 40000 and tuple(cfg.crop_size) == (512, 512)
        assert cfg.model.decode_head.num_classes == 150 and cfg.model.test_cfg.mode == "whole"


@pytest.mark.slow
def test_linear_probe_chooses_on_the_holdout_and_learns(synthetic_ade20k: Path, tmp_path: Path) -> None:
    work_dir = tmp_path / "probe"
    run(train_command(CONFIG, work_dir, data_options(synthetic_ade20k)), timeout=400)
    record = json.loads((work_dir / "seg_probe.json").read_text())
    scores = [point["holdout_mIoU"] for point in record["points"]]
    assert [point["lr_mult"] for point in record["points"]] == [0.3, 3.0, 30.0]
    assert record["final"] and record["chosen"]["holdout_mIoU"] == max(scores)
    assert record["holdout"]["holdout_images"] == 12 and record["holdout"]["fit_images"] == 36
    metrics = json.loads((work_dir / "metrics.json").read_text())["metrics"]
    assert metrics["holdout/head"] == record["chosen"]["head"]
    baseline = untrained_miou(synthetic_ade20k, tmp_path / "untrained")
    assert metrics["mIoU"] >= 40.0 and metrics["mIoU"] >= 3 * baseline, (metrics["mIoU"], baseline)
    validations = json.loads((work_dir / "validations.json").read_text())
    assert len(validations) == 1  # val was read once, after the last iteration
