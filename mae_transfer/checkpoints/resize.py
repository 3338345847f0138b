"""Fitting checkpoint position tensors to a model whose token grid differs.

The interpolation itself lives in `mae_transfer.models.pos_embed` (shared with the run-time
resize of the backbone); this module infers the checkpoint's grid from tensor shapes:

- absolute ``pos_embed`` (1, 1+H*W, C): bicubic on the grid (align_corners=False), cls slot kept;
  a (1, H*W, C) table without cls slot gets a zero one;
- BEiT ``relative_position_bias_table`` ((2H-1)(2W-1)+3, heads): bicubic on the distance grid,
  the 3 cls rows kept; the shared tables of window attention ((2H-1)(2W-1), heads) alike;
- ViTDet ``rel_pos_h``/``rel_pos_w`` (2S-1, head_dim): linear along the distances.
"""

from __future__ import annotations

import torch

from mae_transfer.models.pos_embed import (
    resize_pos_embed,
    resize_rel_pos_1d,
    resize_rel_pos_bias_table,
    square_grid,
)

GridSize = tuple[int, int]


def fit_pos_embed(
    pos_embed: torch.Tensor, new_hw: GridSize, old_hw: GridSize | None = None, rule: str = "bicubic",
    cls_slot: bool = True,
) -> torch.Tensor:
    """Resize a (1, 1+N, C) or (1, N, C) position embedding to (1, 1+H*W, C) for ``new_hw``.

    ``rule`` is the family's resampling rule (``models.pos_embed.resample_grid``). With
    ``cls_slot=False`` (a family without class token) the table is (1, N, C) in and out.

    Raises:
        ValueError: the checkpoint's grid is not square and ``old_hw`` is not given.
    """
    tokens = pos_embed.shape[1]
    if not cls_slot:
        return resize_pos_embed(pos_embed, new_hw, old_hw=old_hw, num_prefix_tokens=0, rule=rule)
    if old_hw is None:
        with_cls, without_cls = square_grid(tokens - 1), square_grid(tokens)
        old_hw = with_cls or without_cls
        if old_hw is None:
            raise ValueError(
                f"cannot infer the grid of a pos_embed with {tokens} tokens: neither {tokens} nor "
                f"{tokens} - 1 (cls slot) is a square; pass old_hw"
            )
    if tokens == old_hw[0] * old_hw[1]:
        pos_embed = torch.cat([pos_embed.new_zeros(1, 1, pos_embed.shape[2]), pos_embed], dim=1)
    return resize_pos_embed(pos_embed, new_hw, old_hw=old_hw, num_prefix_tokens=1, rule=rule)


def rel_pos_table_grid(num_rows: int, cls_rows: int = 3) -> GridSize | None:
    """The square grid (G, G) of a BEiT table with (2G-1)^2 + ``cls_rows`` rows, or None."""
    span = square_grid(num_rows - cls_rows)
    if span is None or span[0] % 2 == 0:
        return None
    side = (span[0] + 1) // 2
    return (side, side)


def fit_rel_pos_bias_table(
    table: torch.Tensor, new_hw: GridSize, old_hw: GridSize | None = None, cls_rows: int = 3
) -> torch.Tensor:
    """Resize a BEiT relative position bias table to the grid ``new_hw``.

    ``cls_rows``: 3 for BEiT's per-block tables, 0 for a grid without cls token (the shared
    tables of window attention).

    Raises:
        ValueError: the table's grid is not square and ``old_hw`` is not given.
    """
    old_hw = old_hw or rel_pos_table_grid(table.shape[0], cls_rows)
    if old_hw is None:
        raise ValueError(
            f"cannot infer the grid of a relative_position_bias_table with {table.shape[0]} rows: "
            f"not (2G-1)^2 + {cls_rows} for any G; pass old_hw"
        )
    return resize_rel_pos_bias_table(table, old_hw, new_hw, cls_rows=cls_rows)


def fit_rel_pos(rel_pos: torch.Tensor, new_length: int) -> torch.Tensor:
    """Resize a ViTDet decomposed relative position table (2S-1, head_dim) to ``new_length``."""
    return resize_rel_pos_1d(rel_pos, new_length)
