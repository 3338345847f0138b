"""Layer decay inside a built segmentor: backbone blocks decayed, neck and heads at scale 1."""

from __future__ import annotations

from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS, init_default_scope
from mmseg.registry import MODELS

import mae_transfer.integrations.mmseg  # noqa: F401  (registers the backbone, neck, constructor)

SMOKE_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "smoke" / "ade20k_upernet.py"


def expected_scale(name: str, decay: float, depth: int) -> float:
    """Official MAE rule, written out independently: L = depth + 1, scale = decay ** (L - layer)."""
    num_layers = depth + 1
    if not name.startswith("backbone."):
        return 1.0
    inner = name[len("backbone.vit."):]
    if inner.startswith(("patch_embed.", "cls_token", "pos_embed")):
        layer = 0
    elif inner.startswith("blocks."):
        layer = int(inner.split(".")[1]) + 1
    else:
        layer = num_layers
    return decay ** (num_layers - layer)


def test_segmentor_param_groups_follow_layer_decay() -> None:
    cfg = Config.fromfile(str(SMOKE_CONFIG))
    init_default_scope("mmseg")
    model = MODELS.build(cfg.model)
    decay, base_lr, depth = 0.75, 1e-3, cfg.model.backbone.depth
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(
            type=cfg.optim_wrapper.constructor,
            optim_wrapper_cfg=dict(type="OptimWrapper", optimizer=dict(cfg.optim_wrapper.optimizer)),
            paramwise_cfg=dict(cfg.optim_wrapper.paramwise_cfg),
        )
    )
    assert cfg.optim_wrapper.paramwise_cfg.layer_decay_rate == decay and cfg.optim_wrapper.optimizer.lr == base_lr
    optimizer = constructor(model).optimizer
    lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    wd_of = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    names = dict(model.named_parameters())
    assert set(lr_of) == {id(p) for p in names.values() if p.requires_grad}
    for name, param in names.items():
        assert lr_of[id(param)] == pytest.approx(base_lr * expected_scale(name, decay, depth)), name
        exempt = param.ndim <= 1 or name.endswith(("pos_embed", "cls_token", "relative_position_bias_table"))
        assert wd_of[id(param)] == (0.0 if exempt else 0.05), name
    block_lrs = [lr_of[id(names[f"backbone.vit.blocks.{i}.attn.qkv.weight"])] for i in range(depth)]
    assert block_lrs == sorted(block_lrs) and len(set(block_lrs)) == depth
    for head in ("decode_head.conv_seg.weight", "auxiliary_head.conv_seg.weight", "neck.rescale.branches.0.0.weight"):
        assert lr_of[id(names[head])] == pytest.approx(base_lr)
