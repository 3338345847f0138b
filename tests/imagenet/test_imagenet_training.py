"""ImageNet-1k through the classification runner: a linear probe on generated ImageNet, from an MAE checkpoint."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import mae_transfer.integrations.classification  # noqa: F401  (registers the task)
from mae_transfer.data import make_dataset
from mae_transfer.integrations.cpu_fallbacks import apply_cpu_fallbacks
from mae_transfer.pretrain import build_mae, save_official_checkpoint

REPO = Path(__file__).resolve().parents[2]
LINEAR = REPO / "configs" / "imagenet" / "vit-base-p16_linear-amp-90e_in1k-224.py"
pytestmark = pytest.mark.slow


def test_linear_probe_trains_on_generated_imagenet_from_a_pretraining_checkpoint(tmp_path: Path) -> None:
    root = make_dataset("imagenet", tmp_path / "imagenet", num_classes=3, train_per_class=8, val_per_class=4)
    torch.manual_seed(0)
    mae = build_mae("vit_tiny_patch16", img_size=64, depth=2, decoder=dict(embed_dim=64, depth=1, num_heads=4))
    checkpoint = save_official_checkpoint(tmp_path / "checkpoint-0.pth", mae, epoch=0, args={"model": "tiny"})

    cfg = Config.fromfile(str(LINEAR))
    cfg.model.backbone = dict(arch="vit_tiny_patch16", img_size=64, depth=2)
    cfg.model.num_classes = 3
    cfg.model.pretrained = str(checkpoint)
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        cfg[loader].update(batch_size=8, num_workers=0, persistent_workers=False, pin_memory=False)
        cfg[loader].dataset.update(data_root=str(root), num_classes=3)
        cfg[loader].dataset.pipeline[1].input_size = 64
    cfg.param_scheduler = [dict(type="CosineAnnealingLR", eta_min=0.0, by_epoch=True, begin=0, end=2,
                                convert_to_iter_based=True)]
    cfg.train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=2, val_interval=2)
    cfg.default_hooks.logger.interval = 1
    cfg.env_cfg.dist_cfg = dict(backend="gloo")
    cfg.work_dir = str(tmp_path / "work")
    cfg.experiment_name = f"test_{uuid.uuid4().hex[:8]}"
    # as tools/train.py does: the linear probe's AmpOptimWrapper becomes float32 without a GPU
    deviations = apply_cpu_fallbacks(cfg)
    if not torch.cuda.is_available():
        assert [d.key for d in deviations] == ["optim_wrapper.type"]
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.val()
    assert 0.0 <= metrics["accuracy/top1"] <= 100.0
    backbone = runner.model.backbone.state_dict()
    encoder = mae.state_dict()
    assert all(torch.equal(backbone[key], encoder[key]) for key in backbone)  # loaded, and frozen by the probe
