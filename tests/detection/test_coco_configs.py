"""Every config in configs/coco (and the smoke config) loads and its detector builds on CPU.

Overrides are for size only: 4 blocks instead of 12/24/32 (global blocks moved to 1 and 3),
every width, head and recipe setting as in the file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from detection_helpers import COCO_CONFIGS, SMOKE_CONFIG
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmdet.registry import MODELS

REFERENCE_WIDTH = {"vit_base_patch16": 768, "vit_large_patch16": 1024, "vit_huge_patch14": 1280}


def _tiny(cfg: Config) -> Config:
    backbone = cfg.model.backbone
    backbone.depth = 4
    if backbone.get("window"):
        backbone.window.global_blocks = [1, 3]
    return cfg


def test_the_expected_recipes_exist() -> None:
    names = {path.name for path in COCO_CONFIGS}
    assert any("vitdet" in n and "vit-b" in n for n in names)
    assert any("vitdet" in n and "vit-l" in n for n in names)
    assert any("vitdet" in n and "vit-h" in n for n in names)
    assert any("mae-fpn" in n for n in names)
    assert any("8xb" in n for n in names), "reduced-compute preset"


@pytest.mark.parametrize("path", COCO_CONFIGS, ids=lambda p: p.stem)
def test_config_loads_with_checkpoint_from_one_variable(path: Path) -> None:
    cfg = Config.fromfile(str(path))
    assert cfg.custom_imports["imports"] == ["mae_transfer.integrations.mmdet"]
    assert cfg.model.backbone.type == "MAETransferViT"
    assert cfg.model.backbone.pretrained == cfg.pretrained and cfg.pretrained.endswith(".pth")
    assert cfg.model.neck.in_channels in (REFERENCE_WIDTH[cfg.model.backbone.arch], [REFERENCE_WIDTH[cfg.model.backbone.arch]] * 4)
    if "amp" in path.stem:
        assert cfg.optim_wrapper.type == "AmpOptimWrapper"
    assert cfg.optim_wrapper.constructor == "MAELayerDecayOptimWrapperConstructor"
    cfg.merge_from_dict({"model.backbone.pretrained": "/weights/other.pth"})
    assert cfg.model.backbone.pretrained == "/weights/other.pth"


@pytest.mark.parametrize("path", [*COCO_CONFIGS, SMOKE_CONFIG], ids=lambda p: p.stem)
def test_detector_builds_and_extracts_a_pyramid(path: Path) -> None:
    init_default_scope("mmdet")
    cfg = _tiny(Config.fromfile(str(path)))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    assert type(model).__name__ == "MaskRCNN"
    with torch.no_grad():
        levels = model.extract_feat(torch.randn(1, 3, 128, 128))
    strides = [128 // level.shape[-1] for level in levels]
    assert strides == [4, 8, 16, 32, 64]
    width = cfg.model.neck.out_channels
    assert all(level.shape[1] == width for level in levels)
