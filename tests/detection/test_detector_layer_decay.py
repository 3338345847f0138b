"""Layer decay inside a built Mask R-CNN: backbone blocks decayed, neck and heads at scale 1."""

from __future__ import annotations

import re

import pytest
import torch
from detection_helpers import REPO
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

from mae_transfer.optim import audit_rows
from mmdet.registry import MODELS

CONFIGS = [
    REPO / "configs" / "coco" / "vitdet_mask-rcnn_vit-b_lsj-1024_100e_amp.py",
    REPO / "configs" / "coco" / "vitdet_mask-rcnn_vit-l_lsj-1024_100e_amp.py",
]
PAPER_CONFIG = REPO / "configs" / "coco" / "mae-fpn_mask-rcnn_vit-l_lsj-1024_100e_amp.py"
DEPTH = 4


def _built(path):
    init_default_scope("mmdet")
    cfg = Config.fromfile(str(path))
    cfg.model.backbone.depth = DEPTH  # size only
    cfg.model.backbone.window.global_blocks = [1, 3]
    cfg.optim_wrapper.type = "OptimWrapper"  # AmpOptimWrapper needs a GPU; the groups are the same
    model = MODELS.build(cfg.model)
    return cfg, model, build_optim_wrapper(model, cfg.optim_wrapper)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_audit_of_a_built_detector(path) -> None:
    cfg, model, optim_wrapper = _built(path)
    rate = cfg.optim_wrapper.paramwise_cfg.layer_decay_rate
    base_lr = cfg.optim_wrapper.optimizer.lr
    rows = audit_rows(optim_wrapper.optimizer.param_groups, model=model)
    by_name = {row.name: row for row in rows}
    assert len(by_name) == sum(1 for p in model.parameters() if p.requires_grad)

    num_layers = DEPTH + 1
    for name, row in by_name.items():
        block = re.match(r"backbone\.vit\.blocks\.(\d+)\.", name)
        if block:
            expected = rate ** (num_layers - (int(block.group(1)) + 1))
        elif re.match(r"backbone\.vit\.(patch_embed|pos_embed|cls_token)", name):
            expected = rate**num_layers
        else:  # final norm, adapter, neck, RPN and RoI heads
            expected = 1.0
        assert row.lr_scale == pytest.approx(expected), name
        assert row.lr == pytest.approx(base_lr * expected), name

    scales = {row.lr_scale for row in rows if row.name.startswith("backbone.vit.blocks.")}
    assert len(scales) == DEPTH and max(scales) < 1.0
    for prefix in ("neck.", "rpn_head.", "roi_head.bbox_head.", "roi_head.mask_head."):
        head = [row for row in rows if row.name.startswith(prefix)]
        assert head and all(row.lr_scale == 1.0 for row in head), prefix
    assert by_name["backbone.vit.pos_embed"].weight_decay == 0.0
    assert by_name["backbone.vit.blocks.0.attn.qkv.weight"].weight_decay == cfg.optim_wrapper.optimizer.weight_decay
    assert by_name["roi_head.bbox_head.fc_cls.bias"].weight_decay == 0.0
    assert isinstance(optim_wrapper.optimizer, torch.optim.AdamW)


def test_paper_recipe_has_no_layer_decay() -> None:
    """Li et al. 2021 (MAE A.3): every parameter at the base lr 8e-5; no weight decay on 1-D
    parameters, pos_embed and the shared relative position tables (each one parameter)."""
    cfg, model, optim_wrapper = _built(PAPER_CONFIG)
    rows = audit_rows(optim_wrapper.optimizer.param_groups, model=model)
    assert len(rows) == sum(1 for p in model.parameters() if p.requires_grad)
    assert {row.lr_scale for row in rows} == {1.0} and all(row.lr == pytest.approx(8e-5) for row in rows)
    by_name = {row.name: row for row in rows}
    for kind in ("window", "global"):
        table = by_name[f"backbone.vit.shared_rel_pos.{kind}.relative_position_bias_table"]
        assert table.weight_decay == 0.0 and table.layer_id == DEPTH + 1
    assert by_name["backbone.vit.pos_embed"].weight_decay == 0.0
    assert by_name["backbone.vit.blocks.0.attn.qkv.weight"].weight_decay == 0.1
    per_block = [n for n in by_name if "rel_pos_h" in n or (".blocks." in n and "relative_position" in n)]
    assert per_block == []
