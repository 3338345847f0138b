import pytest
import torch
import torch.nn.functional as F

from mae_transfer.models.pos_embed import (
    resize_pos_embed,
    resize_rel_pos_bias_table,
    sincos_2d_pos_embed,
    square_grid,
)


@pytest.mark.parametrize(("tokens", "grid"), [(196, (14, 14)), (1, (1, 1)), (195, None), (0, None), (-4, None)])
def test_square_grid_only_for_positive_perfect_squares(tokens, grid):
    assert square_grid(tokens) == grid


def test_resize_14_to_32_is_torch_bicubic_with_cls_kept():
    table = torch.randn(1, 1 + 14 * 14, 64)
    resized = resize_pos_embed(table, (32, 32))
    grid = table[:, 1:].reshape(1, 14, 14, 64).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, size=(32, 32), mode="bicubic", align_corners=False)
    expected = expected.permute(0, 2, 3, 1).reshape(1, 32 * 32, 64)
    assert resized.shape == (1, 1 + 32 * 32, 64)
    torch.testing.assert_close(resized[:, 0], table[:, 0], rtol=0, atol=0)
    torch.testing.assert_close(resized[:, 1:], expected, rtol=0, atol=0)


def test_resize_to_non_square_and_same_size_is_identity():
    table = torch.randn(1, 1 + 14 * 14, 32)
    assert resize_pos_embed(table, (14, 14)) is table
    assert resize_pos_embed(table, (20, 30)).shape == (1, 1 + 600, 32)


def test_resize_rejects_token_count_that_is_not_the_grid():
    with pytest.raises(ValueError, match="square grid from the 15 grid tokens of pos_embed"):
        resize_pos_embed(torch.randn(1, 1 + 15, 8), (4, 4))


def test_sincos_table_shape_cls_slot_and_axes():
    table = sincos_2d_pos_embed(64, (3, 5))
    assert table.shape == (1, 16, 64)
    assert torch.all(table[0, 0] == 0)
    grid = table[0, 1:].reshape(3, 5, 64)
    # first half encodes the column, second half the row
    torch.testing.assert_close(grid[0, :, :32], grid[2, :, :32])
    torch.testing.assert_close(grid[:, 0, 32:], grid[:, 4, 32:])
    assert not torch.allclose(grid[0, 0, :32], grid[0, 1, :32])
    assert table.abs().max() <= 1.0


def test_rel_pos_bias_table_resize_keeps_cls_entries():
    table = torch.randn((2 * 4 - 1) ** 2 + 3, 2)
    resized = resize_rel_pos_bias_table(table, (4, 4), (6, 6))
    assert resized.shape == ((2 * 6 - 1) ** 2 + 3, 2)
    torch.testing.assert_close(resized[-3:], table[-3:])
