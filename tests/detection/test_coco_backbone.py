"""`MAETransferViT` and `MAETransferSimpleFeaturePyramid` as mmdet modules."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope

from mae_transfer.integrations.mmdet import MAETransferViT, group_end_indices
from mae_transfer.models import build_vit
from mmdet.registry import MODELS

TINY = dict(arch="vit_tiny_patch16", depth=4)


def test_group_end_indices_split_blocks_into_four_groups() -> None:
    assert group_end_indices(12) == [2, 5, 8, 11]
    assert group_end_indices(24) == [5, 11, 17, 23]
    assert group_end_indices(32) == [7, 15, 23, 31]
    with pytest.raises(ValueError, match="equal groups"):
        group_end_indices(10)


def test_registered_names_build_from_the_mmdet_registry() -> None:
    init_default_scope("mmdet")
    backbone = MODELS.build(dict(type="MAETransferViT", **TINY))
    neck = MODELS.build(dict(type="MAETransferSimpleFeaturePyramid", in_channels=192, out_channels=32))
    assert isinstance(backbone, MAETransferViT)
    assert MODELS.get("ViT") is not MAETransferViT
    maps = backbone(torch.randn(2, 3, 64, 96))
    assert [m.shape for m in maps] == [torch.Size([2, 192, 4, 6])]
    levels = neck(maps)
    assert [tuple(level.shape[-2:]) for level in levels] == [(16, 24), (8, 12), (4, 6), (2, 3), (1, 2)]
    assert all(level.shape[1] == 32 for level in levels)


def test_multi_level_adapter_returns_strides_4_to_32_from_group_ends() -> None:
    backbone = MAETransferViT(adapter="multi_level", **TINY)
    assert backbone.vit.out_indices == (0, 1, 2, 3)
    maps = backbone(torch.randn(1, 3, 64, 64))
    assert [tuple(m.shape[1:]) for m in maps] == [(192, 16, 16), (192, 8, 8), (192, 4, 4), (192, 2, 2)]


@pytest.mark.parametrize("adapter", ["simple_pyramid", "multi_level"])
def test_roi_features_of_our_levels_match_torchvision_roi_align(adapter: str) -> None:
    """mmdet's RoI extractor (mmcv's CPU RoIAlign) reads our levels correctly.

    The channel LayerNorm leaves channels-last strides and mmcv's CPU kernel ignores strides;
    before the levels were made contiguous, the box and mask heads saw scrambled features.
    """
    init_default_scope("mmdet")
    torch.manual_seed(0)
    if adapter == "multi_level":
        backbone, neck = MAETransferViT(adapter="multi_level", adapter_norm="ln", **TINY), torch.nn.Identity()
    else:
        backbone = MAETransferViT(**TINY)
        neck = MODELS.build(dict(type="MAETransferSimpleFeaturePyramid", in_channels=192, out_channels=32))
    with torch.no_grad():
        levels = neck(backbone(torch.randn(2, 3, 128, 128)))
    assert all(level.is_contiguous() for level in levels)
    extractor = MODELS.build(
        dict(
            type="SingleRoIExtractor",
            roi_layer=dict(type="RoIAlign", output_size=7, sampling_ratio=0),
            out_channels=levels[0].shape[1],
            featmap_strides=[4, 8, 16, 32],
        )
    )
    rois = torch.tensor([[0, 10.0, 12.0, 50.0, 60.0], [1, 64.0, 30.0, 110.0, 90.0], [1, 5.0, 70.0, 40.0, 120.0]])
    expected = torchvision.ops.roi_align(levels[0], rois, (7, 7), spatial_scale=0.25, sampling_ratio=0, aligned=True)
    torch.testing.assert_close(extractor(levels[:4], rois), expected)


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="adapter must be one of"):
        MAETransferViT(adapter="multilevel", **TINY)
    with pytest.raises(ValueError, match="4 block taps"):
        MAETransferViT(adapter="multi_level", out_indices=[1, 3], **TINY)
    with pytest.raises(ValueError, match="unknown arch"):
        MAETransferViT(arch="vit_giant")


@pytest.mark.parametrize("how", ["pretrained", "init_cfg"])
def test_init_weights_loads_the_checkpoint(tmp_path: Path, how: str) -> None:
    torch.manual_seed(1)
    source = build_vit("vit_tiny_patch16", depth=4)
    path = tmp_path / "mae_pretrain_tiny.pth"
    torch.save({"model": source.state_dict()}, path)
    torch.manual_seed(2)
    option = {"pretrained": str(path)} if how == "pretrained" else {"init_cfg": dict(type="Pretrained", checkpoint=str(path))}
    backbone = MAETransferViT(**TINY, **option)
    assert not torch.equal(backbone.vit.blocks[0].attn.qkv.weight, source.blocks[0].attn.qkv.weight)
    # init_weights writes into the current MMLogger's log file: a logger of this test's own, not one
    # another test's runner left current (its file handler may be closed; tests/conftest.py)
    MMLogger.get_instance(f"init-weights-{tmp_path.name}")
    backbone.init_weights()
    owned, saved = backbone.vit.state_dict(), source.state_dict()
    assert set(saved) - set(owned) == {"norm.weight", "norm.bias"}  # maps only: no final norm
    for name, tensor in owned.items():
        assert torch.equal(tensor, saved[name]), name
