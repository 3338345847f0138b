"""The family options of MAEViT: registers, prefix tokens in every mode, pre-norm, no class token, MAE unchanged."""

from __future__ import annotations

import pytest
import torch

from mae_transfer.models import build_vit
from mae_transfer.models.attention import beit_relative_position_index
from mae_transfer.models.options import FAMILIES, EncoderOptions

TINY = {"depth": 4, "img_size": 56, "patch_size": 14}  # patch 14 on the tiny width
WINDOW = {"size": 2, "global_blocks": [1, 3]}


def _randomize(model: torch.nn.Module) -> torch.nn.Module:
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.05)
    return model


def test_default_options_are_the_mae_encoder() -> None:
    assert FAMILIES["mae"].options == EncoderOptions()
    model = build_vit("vit_tiny_patch16", depth=2)
    assert model.num_prefix_tokens == 1 and model.reg_token is None and model.norm_pre is None
    assert model.norm.eps == 1e-6 and model.patch_embed.proj.bias is not None


def test_registers_follow_the_cls_token_without_position_embedding() -> None:
    model = _randomize(build_vit("vit_tiny_patch16", family="dinov2_reg", **TINY)).eval()
    assert model.num_prefix_tokens == 5 and model.pos_embed.shape[1] == 1 + 16
    tokens, grid = model._embed(torch.zeros(1, 3, 56, 56))
    assert tokens.shape[1] == 5 + 16
    torch.testing.assert_close(tokens[:, 1:5], model.reg_token)  # the learned tokens themselves: no position added
    maps = build_vit("vit_tiny_patch16", family="dinov2_reg", out_indices=[1, 3], **TINY).forward_maps(
        torch.randn(2, 3, 56, 70))
    assert [m.shape for m in maps] == [(2, 192, 4, 5)] * 2


@pytest.mark.parametrize("family", ["dinov2_reg", "siglip", "clip"])
@pytest.mark.parametrize("mode", ["segmentation", "window"])
def test_every_parameter_of_a_maps_only_backbone_gets_a_gradient(family: str, mode: str) -> None:
    options = {"rel_pos_bias": True, "out_indices": [1, 3]} if mode == "segmentation" else {"window": WINDOW}
    model = build_vit("vit_tiny_patch16", family=family, activation="quick_gelu" if family == "clip" else None,
                      maps_only=True, **TINY, **options)
    sum(m.square().mean() for m in model.forward_maps(torch.randn(2, 3, 56, 56))).backward()
    assert [name for name, p in model.named_parameters() if p.grad is None] == []
    omitted = dict(model.omitted_keys())
    if mode == "window" and family == "dinov2_reg":
        assert model.reg_token is None and "register" in omitted["reg_token"]
    if mode == "segmentation" and family == "dinov2_reg":
        assert model.num_prefix_tokens == 5 and "reg_token" not in omitted


def test_beit_index_serves_every_prefix_token_through_the_cls_rows() -> None:
    plain = beit_relative_position_index((2, 2), 1)
    with_registers = beit_relative_position_index((2, 2), 3)
    assert torch.equal(with_registers[2:, 2:], plain)  # patches and the last prefix token as before
    entries = 3 * 3 + 3
    assert set(with_registers[:3, 3:].unique().tolist()) == {entries - 3}
    assert set(with_registers[3:, :3].unique().tolist()) == {entries - 2}
    assert set(with_registers[:3, :3].unique().tolist()) == {entries - 1}
    assert torch.equal(beit_relative_position_index((2, 2), 0), plain[1:, 1:])


def test_no_class_token_family_has_no_cls_slot_and_pools_all_tokens() -> None:
    model = build_vit("vit_tiny_patch16", family="ijepa", depth=2, img_size=64)
    assert model.cls_token is None and model.num_prefix_tokens == 0 and model.pos_embed.shape == (1, 16, 192)
    assert model(torch.randn(1, 3, 64, 96)).shape == (1, 24, 192)


def test_pre_norm_and_bias_free_patch_embedding_of_clip() -> None:
    model = build_vit("vit_tiny_patch16", family="clip", activation="quick_gelu", depth=2)
    assert model.norm_pre is not None and model.norm_pre.eps == 1e-5 and model.patch_embed.proj.bias is None
    assert type(model.blocks[0].mlp.act).__name__ == "QuickGELU"


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="activation"):
        EncoderOptions(activation="relu")
    with pytest.raises(ValueError, match="needs a class token"):
        EncoderOptions(class_token=False, probe_feature="cls")
    with pytest.raises(ValueError, match="unknown family 'dinov3'"):
        build_vit("vit_tiny_patch16", family="dinov3")
