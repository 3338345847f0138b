"""Every ADE20K config loads, says what it does (name vs settings), and its model builds on CPU."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from mae_transfer.integrations.mmseg import MAETransferSegViT

REPO = Path(__file__).resolve().parents[2]
ADE20K_CONFIGS = sorted((REPO / "configs" / "ade20k").glob("*.py"))
SMOKE_CONFIG = REPO / "configs" / "smoke" / "ade20k_upernet.py"


def test_the_expected_configs_exist() -> None:
    names = {path.name for path in ADE20K_CONFIGS}
    assert "upernet_mae-vit-b_8xb2-amp-160k_ade20k-512x512.py" in names
    assert "upernet_mae-vit-l_8xb2-amp-160k_ade20k-512x512.py" in names
    assert any(name.endswith("-ms.py") for name in names)
    assert any("-40k_" in name for name in names)


def _segmentor_cfg(cfg: Config) -> dict:
    return cfg.model.module if cfg.model.type == "SegTTAModel" else cfg.model


@pytest.mark.parametrize("path", ADE20K_CONFIGS, ids=lambda p: p.name)
def test_config_matches_its_name(path: Path) -> None:
    cfg = Config.fromfile(str(path))
    name = path.name
    segmentor = _segmentor_cfg(cfg)
    backbone = segmentor.backbone
    assert backbone.type == "MAETransferSegViT" and backbone.rel_pos_bias is True
    assert "fp16" not in cfg, "the 0.x `fp16` key is ignored by mmengine"
    if "-amp-" in name:
        assert cfg.optim_wrapper.type == "AmpOptimWrapper"
    assert cfg.optim_wrapper.constructor == "MAELayerDecayOptimWrapperConstructor"
    assert cfg.optim_wrapper.optimizer.type == "AdamW"
    iters = int(re.search(r"-(\d+)k_", name).group(1)) * 1000
    assert cfg.train_cfg.max_iters == iters
    warmup, poly = cfg.param_scheduler
    assert (warmup.type, warmup.end, poly.type, poly.begin, poly.end) == ("LinearLR", 1500, "PolyLR", 1500, iters)
    batch = re.search(r"_(\d+)xb(\d+)-", name)
    assert int(batch.group(1)) * cfg.train_dataloader.batch_size == 16
    assert tuple(segmentor.data_preprocessor.size) == (512, 512) == tuple(backbone.img_size)
    assert segmentor.test_cfg.mode == "slide" and tuple(segmentor.test_cfg.crop_size) == (512, 512)
    assert segmentor.decode_head.num_classes == segmentor.auxiliary_head.num_classes == 150
    if "vit-b" in name:
        assert backbone.arch == "vit_base_patch16" and list(backbone.out_indices) == [3, 5, 7, 11]
        assert cfg.optim_wrapper.paramwise_cfg.layer_decay_rate == 0.65
    else:
        assert backbone.arch == "vit_large_patch16" and list(backbone.out_indices) == [7, 11, 15, 23]
        assert cfg.optim_wrapper.paramwise_cfg.layer_decay_rate == 0.75
        assert segmentor.neck.embed_dim == 1024 and list(segmentor.decode_head.in_channels) == [1024] * 4
    if name.endswith("-ms.py"):
        assert cfg.model.type == "SegTTAModel"
        tta = cfg.test_dataloader.dataset.pipeline[1]
        assert tta.type == "TestTimeAug" and len(tta.transforms[0]) == 6 and len(tta.transforms[1]) == 2
    else:
        assert cfg.model.type == "EncoderDecoder"


@pytest.mark.parametrize("path", [*ADE20K_CONFIGS, SMOKE_CONFIG], ids=lambda p: p.name)
def test_model_builds_on_cpu(path: Path) -> None:
    cfg = Config.fromfile(str(path))
    init_default_scope("mmseg")
    model = MODELS.build(cfg.model)
    segmentor = model.module if cfg.model.type == "SegTTAModel" else model
    assert isinstance(segmentor.backbone, MAETransferSegViT)
    vit = segmentor.backbone.vit
    assert vit.grid_size == tuple(s // 16 for s in _segmentor_cfg(cfg).data_preprocessor.size)
    assert all(block.attn.relative_position_bias_table is not None for block in vit.blocks)
    assert all(float(block.attn.relative_position_bias_table.abs().sum()) == 0.0 for block in vit.blocks)
    if path == SMOKE_CONFIG:
        model.eval()
        with torch.no_grad():
            logits = model(torch.randn(1, 3, 128, 128), mode="tensor")
        assert logits.shape == (1, 150, 32, 32)
