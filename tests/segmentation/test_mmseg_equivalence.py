"""Our backbone and neck against MMSegmentation's ``MAE`` backbone and ``Feature2Pyramid``.

Same random weights (relative position tables and layer scales randomised too, not left at
their zero/one init), converted to MMSeg's parameter names: the tapped maps and the pyramid
levels must agree within 1e-4, so our ADE20K numbers compare with MMSeg's 48.13 reference.
"""

from __future__ import annotations

import pytest
import torch
from mmseg.models.backbones import MAE
from mmseg.models.necks import Feature2Pyramid

from mae_transfer.integrations.mmseg import (
    MAETransferMultiLevelNeck,
    MAETransferSegViT,
    to_mmseg_feature2pyramid_state_dict,
    to_mmseg_mae_state_dict,
)

def randomise_(module: torch.nn.Module, seed: int) -> None:
    """Overwrite every parameter and BN statistic with seeded random values of a sane scale."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
            if name.endswith("relative_position_index") or name.endswith("num_batches_tracked"):
                continue
            noise = torch.randn(tensor.shape, generator=generator)
            if name.endswith(("running_var", "gamma")) or ("norm" in name and name.endswith("weight")):
                tensor.copy_(1.0 + 0.3 * noise.abs() if "running_var" in name else 1.0 + 0.3 * noise)
            elif name.endswith("relative_position_bias_table"):
                tensor.copy_(0.5 * noise)
            elif tensor.ndim >= 2 and not name.endswith(("pos_embed", "cls_token")):
                fan_in = tensor[0].numel()
                tensor.copy_(noise / fan_in**0.5)
            else:
                tensor.copy_(0.1 * noise)


def build_pair(arch: str, embed_dim: int, heads: int, depth: int, img_size: tuple[int, int],
               taps: list[int]) -> tuple[MAETransferSegViT, MAE]:
    ours = MAETransferSegViT(arch=arch, depth=depth, img_size=img_size, out_indices=taps, layer_scale_init=1.0)
    randomise_(ours.vit, seed=depth)
    reference = MAE(
        img_size=img_size, patch_size=16, embed_dims=embed_dim, num_layers=depth, num_heads=heads,
        mlp_ratio=4, out_indices=taps, init_values=1.0, norm_cfg=dict(type="LN", eps=1e-6))
    result = reference.load_state_dict(to_mmseg_mae_state_dict(ours.vit.state_dict()), strict=False)
    assert not result.unexpected_keys
    assert all(key.endswith("relative_position_index") for key in result.missing_keys), result.missing_keys
    ours.eval()
    reference.eval()  # mmseg's BEiT.train() returns None, so no chaining
    return ours, reference


@pytest.mark.parametrize(
    "arch, embed_dim, heads, depth, img_size, taps",
    [
        ("vit_base_patch16", 768, 12, 12, (64, 64), [3, 5, 7, 11]),
        ("vit_tiny_patch16", 192, 3, 4, (48, 80), [0, 1, 2, 3]),
    ],
)
def test_tapped_maps_equal_mmseg_mae(arch, embed_dim, heads, depth, img_size, taps) -> None:
    ours, reference = build_pair(arch, embed_dim, heads, depth, img_size, taps)
    for block in ours.vit.blocks:
        assert block.attn.relative_position_bias_table.abs().min() > 0, "tables must not be zero"
    images = torch.randn(2, 3, *img_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        our_maps = ours(images)
        reference_maps = reference(images)
    assert len(our_maps) == len(reference_maps) == len(taps)
    for tap, mine, theirs in zip(taps, our_maps, reference_maps):
        assert mine.shape == theirs.shape == (2, embed_dim, img_size[0] // 16, img_size[1] // 16)
        assert theirs.abs().mean() > 0.1, "maps are not degenerate"
        torch.testing.assert_close(mine, theirs, atol=1e-4, rtol=1e-4, msg=lambda m: f"block {tap}: {m}")


def test_relative_position_bias_changes_the_maps() -> None:
    """The comparison above is sensitive to the bias: zeroing our tables breaks equality."""
    ours, reference = build_pair("vit_tiny_patch16", 192, 3, 2, (48, 48), [0, 1])
    images = torch.randn(1, 3, 48, 48)
    with torch.no_grad():
        for block in ours.vit.blocks:
            block.attn.relative_position_bias_table.zero_()
        assert (ours(images)[-1] - reference(images)[-1]).abs().max() > 1e-2


def test_neck_equals_feature2pyramid() -> None:
    ours = MAETransferMultiLevelNeck(embed_dim=32, norm_cfg=dict(type="BN"))
    randomise_(ours, seed=1)
    reference = Feature2Pyramid(embed_dim=32, rescales=[4, 2, 1, 0.5], norm_cfg=dict(type="BN"))
    state = to_mmseg_feature2pyramid_state_dict(ours.state_dict())
    reference.load_state_dict(state, strict=True)
    ours.eval(), reference.eval()
    maps = [torch.randn(2, 32, 6, 8) for _ in range(4)]
    with torch.no_grad():
        mine, theirs = ours(maps), reference(maps)
    assert [tuple(m.shape[-2:]) for m in mine] == [(24, 32), (12, 16), (6, 8), (3, 4)]
    for level, (a, b) in enumerate(zip(mine, theirs)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5, msg=lambda m: f"level {level}: {m}")
