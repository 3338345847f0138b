"""Position embeddings and relative position tables are resized to the model's grid."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from checkpoint_cases import ARCH, CASES, DIM, GRID, HEADS, save, timm_state
from mae_transfer.checkpoints import CheckpointError, load_pretrained
from mae_transfer.checkpoints.resize import fit_pos_embed, fit_rel_pos, fit_rel_pos_bias_table
from mae_transfer.models import build_vit


def _reference_pos_embed(pos: torch.Tensor, old: tuple, new: tuple) -> torch.Tensor:
    """torch's bicubic interpolation of the grid part, cls slot kept."""
    grid = pos[:, 1:].reshape(1, old[0], old[1], -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=new, mode="bicubic", align_corners=False)
    return torch.cat([pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, new[0] * new[1], -1)], 1)


def test_pos_embed_14_to_32_is_bicubic_with_cls_slot_kept() -> None:
    pos = torch.randn(1, 1 + 14 * 14, DIM)
    resized = fit_pos_embed(pos, (32, 32))
    assert resized.shape == (1, 1 + 32 * 32, DIM)
    assert torch.equal(resized[:, :1], pos[:, :1])
    expected = _reference_pos_embed(pos, (14, 14), (32, 32))
    torch.testing.assert_close(resized, expected, rtol=0, atol=1e-6)


def test_load_resizes_pos_embed_to_512_input() -> None:
    sd = timm_state(num_classes=0)
    model = build_vit(ARCH, img_size=512)
    report = load_pretrained(model, {"model": sd})
    assert [(r.key, r.from_shape, r.to_shape) for r in report.resized] == [
        ("pos_embed", (1, 197, DIM), (1, 1025, DIM))
    ]
    expected = _reference_pos_embed(sd["pos_embed"], (14, 14), (32, 32))
    torch.testing.assert_close(model.pos_embed.detach(), expected, rtol=0, atol=1e-6)


def test_load_resizes_pos_embed_to_non_square_grid() -> None:
    sd = timm_state(num_classes=0)
    model = build_vit(ARCH, img_size=(224, 320))
    load_pretrained(model, {"model": sd})
    expected = _reference_pos_embed(sd["pos_embed"], (14, 14), (14, 20))
    torch.testing.assert_close(model.pos_embed.detach(), expected, rtol=0, atol=1e-6)


def test_pos_embed_without_cls_slot_gets_a_zero_one() -> None:
    grid = torch.randn(1, 14 * 14, DIM)
    resized = fit_pos_embed(grid, (14, 14))
    assert resized.shape == (1, 197, DIM)
    assert torch.count_nonzero(resized[:, 0]) == 0 and torch.equal(resized[:, 1:], grid)


def test_beit_tables_follow_the_grid_to_512(tmp_path: Path) -> None:
    case = CASES["beit"]()
    model = build_vit(ARCH, img_size=512, layer_scale_init=0.1, rel_pos_bias=True)
    report = load_pretrained(model, save(case, tmp_path))
    rows = 63 * 63 + 3
    resized = {r.key: (r.from_shape, r.to_shape) for r in report.resized}
    key = "blocks.7.attn.relative_position_bias_table"
    assert resized[key] == ((27 * 27 + 3, HEADS), (rows, HEADS))
    table = case.checkpoint["model"]["blocks.7.attn.relative_position_bias_table"]
    span = table[:-3].reshape(1, 27, 27, HEADS).permute(0, 3, 1, 2)
    span = F.interpolate(span, size=(63, 63), mode="bicubic", align_corners=False)
    expected = torch.cat([span.permute(0, 2, 3, 1).reshape(-1, HEADS), table[-3:]])
    loaded = model.blocks[7].attn.relative_position_bias_table.detach()
    torch.testing.assert_close(loaded, expected, rtol=0, atol=1e-6)
    assert torch.equal(loaded[-3:], table[-3:])


def test_rel_pos_bias_table_function_keeps_cls_rows() -> None:
    table = torch.randn((2 * GRID - 1) ** 2 + 3, HEADS)
    resized = fit_rel_pos_bias_table(table, (20, 20))
    assert resized.shape == (39 * 39 + 3, HEADS) and torch.equal(resized[-3:], table[-3:])


def test_vitdet_rel_pos_is_linearly_interpolated() -> None:
    sd = timm_state(num_classes=0)
    head_dim = DIM // HEADS
    for i in range(12):
        size = 14 if i in (2, 5, 8, 11) else 7
        sd[f"blocks.{i}.attn.rel_pos_h"] = torch.randn(2 * size - 1, head_dim)
        sd[f"blocks.{i}.attn.rel_pos_w"] = torch.randn(2 * size - 1, head_dim)
    model = build_vit(ARCH, img_size=256, window={"size": 4, "global_blocks": [2, 5, 8, 11]})
    report = load_pretrained(model, {"model": sd})
    resized = {r.key: r.to_shape for r in report.resized}
    assert resized["blocks.0.attn.rel_pos_h"] == (7, head_dim)
    assert resized["blocks.2.attn.rel_pos_w"] == (31, head_dim)
    source = sd["blocks.0.attn.rel_pos_h"]
    expected = F.interpolate(source.t()[None], size=7, mode="linear", align_corners=False)[0].t()
    torch.testing.assert_close(model.blocks[0].attn.rel_pos_h.detach(), expected, rtol=0, atol=1e-6)
    assert torch.equal(fit_rel_pos(source, 13), source)


def test_patch14_checkpoint_loads_into_a_patch16_model(tmp_path: Path) -> None:
    """ViTDet's ViT-H path: the /14 MAE kernel is interpolated to 16x16, pos_embed to the new grid."""
    torch.manual_seed(0)
    source = build_vit("vit_tiny_patch16", depth=2, patch_size=14, img_size=224)
    with torch.no_grad():
        source.patch_embed.proj.weight.fill_(0.25)
        source.patch_embed.proj.weight[:, 1] = torch.linspace(-1, 1, 14).repeat(14, 1)  # ramp along x
    path = tmp_path / "mae_pretrain_vit_tiny_patch14.pth"
    torch.save({"model": source.state_dict()}, path)
    model = build_vit("vit_tiny_patch16", depth=2, img_size=512)

    report = load_pretrained(model, path)

    resized = {entry.key: (entry.from_shape, entry.to_shape) for entry in report.resized}
    assert resized["patch_embed.proj.weight"] == ((192, 3, 14, 14), (192, 3, 16, 16))
    assert resized["pos_embed"] == ((1, 1 + 16 * 16, 192), (1, 1 + 32 * 32, 192))
    kernel = model.patch_embed.proj.weight.detach()
    torch.testing.assert_close(kernel[:, 0], torch.full((192, 16, 16), 0.25))  # constant stays constant
    ramp = kernel[0, 1]
    assert torch.all(ramp[:, 1:] > ramp[:, :-1]) and torch.allclose(ramp, ramp[:1].expand(16, 16))
    for key, value in source.state_dict().items():
        if key.startswith("blocks."):
            assert torch.equal(model.state_dict()[key], value), key
    assert model(torch.randn(1, 3, 512, 512)).shape == (1, 1 + 32 * 32, 192)


def test_patch_size_alone_may_differ_but_not_the_width(tmp_path: Path) -> None:
    path = tmp_path / "small_patch14.pth"
    torch.save({"model": build_vit("vit_small_patch16", depth=2, patch_size=14).state_dict()}, path)
    with pytest.raises(CheckpointError, match="wrong architecture"):
        load_pretrained(build_vit("vit_tiny_patch16", depth=2), path)
