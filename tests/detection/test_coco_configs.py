"""Every config in configs/coco (and the smoke config) loads and its detector builds on CPU.

Overrides are for size only: 4 blocks instead of 12/24/32 (global blocks moved to 1 and 3),
every width, head and recipe setting as in the file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from detection_helpers import COCO_CONFIGS, REPO, SMOKE_CONFIG
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmdet.registry import MODELS

MULTILEVEL_SMOKE_CONFIG = REPO / "configs" / "smoke" / "coco_maskrcnn_multilevel.py"
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
    assert cfg.optim_wrapper.constructor == "MAETransferLayerDecayOptimWrapperConstructor"
    cfg.merge_from_dict({"model.backbone.pretrained": "/weights/other.pth"})
    assert cfg.model.backbone.pretrained == "/weights/other.pth"


@pytest.mark.parametrize("path", [*COCO_CONFIGS, SMOKE_CONFIG, MULTILEVEL_SMOKE_CONFIG], ids=lambda p: p.stem)
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


PAPER = {p.name: p for p in COCO_CONFIGS if p.name.startswith("mae-fpn")}


@pytest.mark.parametrize("name, drop_path, global_blocks", [
    ("mae-fpn_mask-rcnn_vit-b_lsj-1024_100e_amp.py", 0.1, [2, 5, 8, 11]),
    ("mae-fpn_mask-rcnn_vit-l_lsj-1024_100e_amp.py", 0.3, [5, 11, 17, 23]),
])
def test_paper_configs_carry_li_et_al_values(name: str, drop_path: float, global_blocks: list[int]) -> None:
    """MAE A.3 = Li et al. 2021 (arXiv 2111.11429), Secs. 2.1-2.3, 3.1 and 4.2."""
    cfg = Config.fromfile(str(PAPER[name]))
    backbone = cfg.model.backbone
    assert backbone.adapter == "multi_level" and backbone.adapter_norm == "gn"  # x4: deconv, GN, GELU, deconv
    assert backbone.drop_path_rate == drop_path
    assert backbone.window == dict(size=14, global_blocks=global_blocks, rel_pos="shared", global_grid=64)
    assert cfg.model.neck.type == "FPN" and cfg.model.neck.norm_cfg.type == "SyncBN"
    assert cfg.model.rpn_head.num_convs == 2
    assert cfg.model.roi_head.bbox_head.type == "Shared4Conv1FCBBoxHead"
    assert cfg.model.roi_head.bbox_head.norm_cfg.type == cfg.model.roi_head.mask_head.norm_cfg.type == "SyncBN"
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, tuple(optimizer.betas)) == ("AdamW", 8e-5, (0.9, 0.999))
    assert optimizer.weight_decay == 0.1
    assert cfg.optim_wrapper.paramwise_cfg.layer_decay_rate == 1.0  # no layer-wise lr decay
    assert cfg.optim_wrapper.type == "AmpOptimWrapper"
    warmup, cosine = cfg.param_scheduler
    assert (warmup.type, warmup.begin, warmup.end) == ("LinearLR", 0, 461)  # 0.25 x 118000 / 64
    assert (cosine.type, cosine.begin, cosine.end, cosine.eta_min) == ("CosineAnnealingLR", 461, 184375, 0.0)
    assert cfg.train_cfg.max_iters == 184375  # 100 epochs at batch 64
    assert cfg.auto_scale_lr.base_batch_size == 64
    text = (REPO / "configs" / "_base_" / "coco" / "mae_fpn_mask_rcnn.py").read_text()
    assert "2111.11429" in text and "unpublished" not in text


def test_vit_h_75_epochs_follow_detectron2_arithmetic() -> None:
    cfg = Config.fromfile(str(REPO / "configs" / "coco" / "vitdet_mask-rcnn_vit-h_lsj-1024_75e_amp.py"))
    warmup, steps = cfg.param_scheduler
    assert cfg.train_cfg.max_iters == 138281 == 184375 * 3 // 4
    assert steps.milestones == [122916, 133159] and steps.end == 138281
    assert (warmup.end, warmup.start_factor) == (187, 0.001)  # 250 / 184375 of 138281 = 187.5


def _backbone(path: Path):
    """The config's backbone at depth 4 (global blocks 1 and 3), every other option as configured."""
    init_default_scope("mmdet")
    cfg = _tiny(Config.fromfile(str(path)))
    cfg.model.backbone.pretrained = None
    with torch.device("meta"):
        return MODELS.build(cfg.model.backbone).vit


@pytest.mark.parametrize("path", COCO_CONFIGS, ids=lambda p: p.stem)
def test_global_block_tables_are_sized_for_1024(path: Path) -> None:
    vit = _backbone(path)
    assert vit.cls_token is None and vit.norm is None  # window attention, maps only
    if vit.window.rel_pos == "shared":
        assert vit.shared_rel_pos["global"].relative_position_bias_table.shape[0] == 127 * 127
        assert vit.shared_rel_pos["window"].relative_position_bias_table.shape[0] == 27 * 27
    else:
        assert vit.blocks[1].attn.rel_pos_h.shape[0] == vit.blocks[3].attn.rel_pos_w.shape[0] == 127
        assert vit.blocks[0].attn.rel_pos_h.shape[0] == 27


def test_vitdet_test_pipeline_does_not_pad_raw_pixels() -> None:
    cfg = Config.fromfile(str(REPO / "configs" / "coco" / "vitdet_mask-rcnn_vit-b_lsj-1024_100e_amp.py"))
    assert not any(step["type"] == "Pad" for step in cfg.test_dataloader.dataset.pipeline)
    assert cfg.model.data_preprocessor.pad_size_divisor == 1024 and cfg.model.data_preprocessor.pad_mask
