"""Position embeddings: the MAE fixed 2-D sin-cos table and resizing of learned tables.

The sin-cos table follows the MAE paper's pre-training setup (half of the channels encode the
column coordinate, half the row coordinate, a zero vector in the cls slot). Resizing keeps prefix
(cls) slots as is and resamples the grid part by one of three rules (``POS_RULES`` in
:mod:`mae_transfer.models.options`), each a family's own:

- ``bicubic``: to the target size, ``align_corners=False``, no antialias (MAE ``util/pos_embed.py``,
  transformers' ViT, CLIP, SigLIP and I-JEPA ``interpolate_pos_encoding``);
- ``bicubic_antialias``: the same with antialias (timm ``resample_abs_pos_embed``, DINOv2 with
  registers, open_clip's load-time ``resize_pos_embed``); equal to ``bicubic`` when upsampling;
- ``dino_offset``: DINO, iBOT and DINOv2 without registers: ``scale_factor=(h + 0.1) / H``
  (``interpolate_offset=0.1``, no antialias), so the sample positions follow the scale, not
  the sizes; it differs from the other two by ~1e-3 on random tables.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _sincos_1d(embed_dim: int, positions: torch.Tensor) -> torch.Tensor:
    """(M,) positions -> (M, embed_dim) with sines in the first half and cosines in the second."""
    if embed_dim % 2:
        raise ValueError(f"1-D sin-cos embedding needs an even dimension, got {embed_dim}")
    omega = torch.arange(embed_dim // 2, dtype=torch.float64) / (embed_dim / 2.0)
    omega = 1.0 / 10000**omega
    angles = positions.double().reshape(-1)[:, None] * omega[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def sincos_2d_pos_embed(embed_dim: int, grid_hw: tuple[int, int], cls_token: bool = True) -> torch.Tensor:
    """Fixed 2-D sin-cos position embedding of shape (1, [1 +] H * W, embed_dim), float32."""
    if embed_dim % 4:
        raise ValueError(f"2-D sin-cos embedding needs a dimension divisible by 4, got {embed_dim}")
    grid_h, grid_w = grid_hw
    rows, cols = torch.meshgrid(torch.arange(grid_h), torch.arange(grid_w), indexing="ij")
    table = torch.cat([_sincos_1d(embed_dim // 2, cols), _sincos_1d(embed_dim // 2, rows)], dim=1)
    if cls_token:
        table = torch.cat([torch.zeros(1, embed_dim, dtype=table.dtype), table], dim=0)
    return table.float().unsqueeze(0)


def square_grid(num_tokens: int) -> tuple[int, int] | None:
    """(side, side) when ``num_tokens`` is a positive perfect square, else None.

    The one place a grid is inferred from a token count; callers raise their own error, naming
    the tensor and the count, when a grid is required.
    """
    side = math.isqrt(max(num_tokens, 0))
    return (side, side) if side > 0 and side * side == num_tokens else None


DINO_OFFSET = 0.1  # dinov2 hub/backbones.py interpolate_offset; dino vision_transformer.py "w0 + 0.1"


def resample_grid(grid: torch.Tensor, new_hw: tuple[int, int], rule: str = "bicubic") -> torch.Tensor:
    """Resample a (1, C, H, W) float32 grid to ``new_hw`` by the named rule (module docstring)."""
    old_hw = tuple(grid.shape[-2:])
    if rule == "bicubic":
        return F.interpolate(grid, size=new_hw, mode="bicubic", align_corners=False)
    if rule == "bicubic_antialias":
        return F.interpolate(grid, size=new_hw, mode="bicubic", align_corners=False, antialias=True)
    if rule == "dino_offset":
        scale = ((new_hw[0] + DINO_OFFSET) / old_hw[0], (new_hw[1] + DINO_OFFSET) / old_hw[1])
        out = F.interpolate(grid, scale_factor=scale, mode="bicubic", align_corners=False)
        if tuple(out.shape[-2:]) != tuple(new_hw):
            raise ValueError(f"dino_offset resampling of a {old_hw} grid gave {tuple(out.shape[-2:])}, not {new_hw}")
        return out
    raise ValueError(f"unknown position resampling rule {rule!r}; expected bicubic, bicubic_antialias, dino_offset")


def resize_pos_embed(
    pos_embed: torch.Tensor,
    new_hw: tuple[int, int],
    old_hw: tuple[int, int] | None = None,
    num_prefix_tokens: int = 1,
    rule: str = "bicubic",
) -> torch.Tensor:
    """Resize a (1, prefix + H*W, C) table to the grid ``new_hw`` by the resampling ``rule``.

    The prefix slots (the cls token's) are kept unchanged; interpolation runs in float32 and the
    result has the input's dtype. Returns the input itself when the grid already matches.
    """
    prefix, grid = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    if old_hw is None:
        old_hw = square_grid(grid.shape[1])
        if old_hw is None:
            raise ValueError(
                f"cannot infer a square grid from the {grid.shape[1]} grid tokens of pos_embed "
                f"(after {num_prefix_tokens} prefix tokens); pass old_hw"
            )
    old_hw = tuple(old_hw)
    new_hw = tuple(new_hw)
    if old_hw == new_hw:
        return pos_embed
    if old_hw[0] * old_hw[1] != grid.shape[1]:
        raise ValueError(f"pos_embed has {grid.shape[1]} grid tokens, which is not {old_hw[0]}x{old_hw[1]}")
    channels = grid.shape[-1]
    grid = grid.reshape(1, old_hw[0], old_hw[1], channels).permute(0, 3, 1, 2).float()
    grid = resample_grid(grid, new_hw, rule)
    grid = grid.permute(0, 2, 3, 1).reshape(1, new_hw[0] * new_hw[1], channels).to(pos_embed.dtype)
    return torch.cat([prefix, grid], dim=1)


def resize_rel_pos_bias_table(
    table: torch.Tensor, old_hw: tuple[int, int], new_hw: tuple[int, int], cls_rows: int = 3
) -> torch.Tensor:
    """Resize a BEiT relative position bias table ((2h-1)(2w-1) + cls_rows, heads) to a new grid.

    The (2h-1, 2w-1) part is interpolated bicubically; the ``cls_rows`` cls-related entries at
    the end (3 in BEiT, 0 for a grid without cls token) are kept.
    """
    old_hw, new_hw = tuple(old_hw), tuple(new_hw)
    if old_hw == new_hw:
        return table
    old_span = (2 * old_hw[0] - 1, 2 * old_hw[1] - 1)
    new_span = (2 * new_hw[0] - 1, 2 * new_hw[1] - 1)
    expected = old_span[0] * old_span[1] + cls_rows
    if table.shape[0] != expected:
        raise ValueError(f"relative position table has {table.shape[0]} rows, expected {expected} for grid {old_hw}")
    grid, extra = table[: table.shape[0] - cls_rows], table[table.shape[0] - cls_rows :]
    heads = table.shape[1]
    grid = grid.reshape(1, old_span[0], old_span[1], heads).permute(0, 3, 1, 2).float()
    grid = F.interpolate(grid, size=new_span, mode="bicubic", align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(-1, heads).to(table.dtype)
    return torch.cat([grid, extra], dim=0)


def resize_rel_pos_1d(rel_pos: torch.Tensor, length: int) -> torch.Tensor:
    """Linearly interpolate a decomposed relative position table (L, C) to (length, C)."""
    if rel_pos.shape[0] == length:
        return rel_pos
    resized = F.interpolate(rel_pos.float().t().unsqueeze(0), size=length, mode="linear", align_corners=False)
    return resized.squeeze(0).t().to(rel_pos.dtype)
