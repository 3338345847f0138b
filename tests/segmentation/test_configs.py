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
# the linear probe (linear-probe_*) is built by tests/segmentation/test_linear_probe.py
ADE20K_CONFIGS = sorted(path for path in (REPO / "configs" / "ade20k").glob("*.py")
                        if not path.stem.startswith("linear-probe_"))
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
    assert cfg.optim_wrapper.constructor == "MAETransferLayerDecayOptimWrapperConstructor"
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
        assert all(resize.min_size == 512 for resize in tta.transforms[0])  # the 48.70 reference's clamp
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


MS_CONFIGS = [path for path in ADE20K_CONFIGS if path.name.endswith("-ms.py")]
# ADE20K-shaped (width, height): the common 683x512 landscape and its portrait, a small
# 512x384 image that every scale must enlarge, and a large 2048x1536 one.
ADE_SHAPES = [(683, 512), (512, 683), (512, 384), (2048, 1536)]


def _ms_flip_outputs(cfg: Config, image_path: Path, seg_path: Path) -> list:
    import mae_transfer.integrations.mmseg_tta  # noqa: F401  (the -ms configs' custom_imports)
    from mmseg.registry import TRANSFORMS

    init_default_scope("mmseg")
    results = dict(img_path=str(image_path), seg_map_path=str(seg_path), reduce_zero_label=True, seg_fields=[])
    for step in cfg.test_dataloader.dataset.pipeline:
        results = TRANSFORMS.build(step)(results)
    return list(zip(results["inputs"], results["data_samples"]))


@pytest.mark.parametrize("path", MS_CONFIGS, ids=lambda p: p.name)
@pytest.mark.parametrize("shape", ADE_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_ms_flip_short_side_never_below_512(path: Path, shape: tuple[int, int], tmp_path: Path) -> None:
    from PIL import Image

    width, height = shape
    image_path, seg_path = tmp_path / "image.jpg", tmp_path / "seg.png"
    Image.new("RGB", (width, height), (90, 120, 30)).save(image_path)
    Image.new("L", (width, height), 3).save(seg_path)
    outputs = _ms_flip_outputs(Config.fromfile(str(path)), image_path, seg_path)
    assert len(outputs) == 6 * 2  # 6 scales x (no flip, flip)
    short_sides = []
    for inputs, sample in outputs:
        out_h, out_w = inputs.shape[-2:]
        assert tuple(sample.img_shape) == (out_h, out_w)
        assert min(out_h, out_w) >= 512
        # aspect ratio kept (to the pixel), the ground truth left at the original size
        assert abs(out_w / out_h - width / height) < 2 / min(out_h, out_w)
        assert tuple(sample.gt_sem_seg.data.shape[-2:]) == (height, width)
        short_sides.append(min(out_h, out_w))
    # mmseg 0.x min_size rule: short side = max(512 x ratio, 512) for ratios 0.5 ... 1.75
    expected = [max(int(512 * r), 512) for r in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)]
    assert sorted(short_sides) == sorted(expected * 2)
    assert sorted(s.flip for _, s in outputs) == [False] * 6 + [True] * 6


def test_ms_flip_pipeline_uses_the_min_size_resize() -> None:
    for path in MS_CONFIGS:
        cfg = Config.fromfile(str(path))
        assert "mae_transfer.integrations.mmseg_tta" in cfg.custom_imports.imports
        resizes = cfg.test_dataloader.dataset.pipeline[1].transforms[0]
        assert [r.type for r in resizes] == ["MAETransferMinSizeResize"] * 6
        assert all(r.min_size == 512 and r.keep_ratio for r in resizes)
        ratios = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
        assert [tuple(r.scale) for r in resizes] == [(int(2048 * f), int(512 * f)) for f in ratios]


def test_min_size_resize_without_min_size_is_mmcv_resize() -> None:
    import numpy as np
    from mmcv.transforms import Resize

    from mae_transfer.integrations.mmseg_tta import MAETransferMinSizeResize

    image = np.zeros((384, 700, 3), dtype=np.uint8)
    ours = MAETransferMinSizeResize(scale=(1024, 256), keep_ratio=True)(dict(img=image.copy()))
    theirs = Resize(scale=(1024, 256), keep_ratio=True)(dict(img=image.copy()))
    assert ours["img"].shape == theirs["img"].shape == (256, 467, 3)
    clamped = MAETransferMinSizeResize(scale=(1024, 256), keep_ratio=True, min_size=512)(dict(img=image.copy()))
    assert clamped["img"].shape == (512, 933, 3)  # 700 x 512 / 384 = 933.3
    with pytest.raises(ValueError, match="keep_ratio"):
        MAETransferMinSizeResize(scale=(1024, 256), keep_ratio=False, min_size=512)
