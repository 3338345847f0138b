"""timm <-> OpenMMLab ViT names come from one table and invert each other."""

from __future__ import annotations

import pytest

from mae_transfer.checkpoints.openmmlab_names import mm_to_timm, timm_to_mm
from mae_transfer.models import build_vit


@pytest.mark.parametrize("family", ["mmpretrain", "mmseg"])
def test_every_vit_key_round_trips(family: str) -> None:
    keys = build_vit("vit_tiny_patch16", depth=2, layer_scale_init=0.1).state_dict()
    for key in keys:
        assert mm_to_timm(timm_to_mm(key, family)) == key


@pytest.mark.parametrize(
    ("timm", "mmpretrain", "mmseg"),
    [
        ("patch_embed.proj.weight", "patch_embed.projection.weight", "patch_embed.projection.weight"),
        ("blocks.3.norm1.bias", "layers.3.ln1.bias", "layers.3.ln1.bias"),
        ("blocks.3.mlp.fc1.weight", "layers.3.ffn.layers.0.0.weight", "layers.3.ffn.layers.0.0.weight"),
        ("blocks.3.mlp.fc2.bias", "layers.3.ffn.layers.1.bias", "layers.3.ffn.layers.1.bias"),
        ("blocks.3.attn.qkv.weight", "layers.3.attn.qkv.weight", "layers.3.attn.qkv.weight"),
        ("blocks.11.ls2.gamma", "layers.11.ffn.gamma2.weight", "layers.11.gamma_2"),
        ("norm.weight", "ln1.weight", "ln1.weight"),
        ("fc_norm.bias", "ln2.bias", "ln2.bias"),
        ("cls_token", "cls_token", "cls_token"),
    ],
)
def test_names_of_both_families(timm: str, mmpretrain: str, mmseg: str) -> None:
    assert timm_to_mm(timm, "mmpretrain") == mmpretrain
    assert timm_to_mm(timm, "mmseg") == mmseg
    assert mm_to_timm(mmpretrain) == mm_to_timm(mmseg) == timm


def test_unknown_family_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown OpenMMLab family 'mmdet'"):
        timm_to_mm("cls_token", "mmdet")
