"""Multi-head self-attention through fused scaled-dot-product attention, with optional biases.

Three position biases from the transfer recipes are supported, all computed as an additive
float mask for ``torch.nn.functional.scaled_dot_product_attention``:

- BEiT-style relative position bias (one learned table per block, zero-initialised), used by
  MAE's ADE20K recipe (MAE paper A.4);
- ViTDet-style decomposed relative positions (separate row and column tables applied to the
  queries, zero-initialised; Li et al. 2022), used with window attention for COCO;
- a T5/BEiT-style bias table without cls rows owned outside the blocks and shared by several of
  them (:class:`SharedRelativePositionBias`; Li et al. 2021, "Benchmarking Detection Transfer
  Learning with Vision Transformers", Sec. 3.1: one table for the windowed blocks, one for the
  global blocks), passed to :class:`Attention` as ``attn_bias``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mae_transfer.models.pos_embed import resize_rel_pos_1d, resize_rel_pos_bias_table


def relative_offset_index(grid_hw: tuple[int, int]) -> torch.Tensor:
    """Index (H*W, H*W) of each query/key pair's offset into a (2H-1) x (2W-1) table, row-major."""
    height, width = grid_hw
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    coords = torch.stack([rows.flatten(), cols.flatten()])
    offsets = coords[:, :, None] - coords[:, None, :]
    offsets[0] += height - 1
    offsets[1] += width - 1
    return offsets[0] * (2 * width - 1) + offsets[1]


def beit_relative_position_index(grid_hw: tuple[int, int], num_prefix_tokens: int = 1) -> torch.Tensor:
    """Index (P + H*W, P + H*W) into a BEiT bias table; the last three rows serve the prefix tokens.

    Patch pairs index the (2H-1) x (2W-1) offset grid; BEiT's one cls token uses row ``-3`` as
    query, row ``-2`` as key and row ``-1`` with itself. With ``num_prefix_tokens`` P other than
    1 (register tokens after the cls token, or no cls token) every prefix token uses the cls
    rows, so a BEiT table serves any family; with P = 0 the three rows are unused.
    """
    height, width = grid_hw
    prefix = num_prefix_tokens
    num_entries = (2 * height - 1) * (2 * width - 1) + 3
    index = torch.zeros(height * width + prefix, height * width + prefix, dtype=torch.long)
    index[prefix:, prefix:] = relative_offset_index(grid_hw)
    index[:prefix, :] = num_entries - 3
    index[:, :prefix] = num_entries - 2
    index[:prefix, :prefix] = num_entries - 1
    return index


def relative_position_bias(
    table: torch.Tensor,
    index: torch.Tensor,
    table_grid: tuple[int, int],
    grid_hw: tuple[int, int],
    num_prefix_tokens: int = 1,
) -> torch.Tensor:
    """The BEiT bias (heads, T, T) for ``grid_hw``, resizing the table if it differs."""
    if tuple(grid_hw) != tuple(table_grid):
        table = resize_rel_pos_bias_table(table, table_grid, grid_hw)
        index = beit_relative_position_index(tuple(grid_hw), num_prefix_tokens).to(table.device)
    tokens = index.shape[0]
    return table[index.reshape(-1)].reshape(tokens, tokens, -1).permute(2, 0, 1)


class SharedRelativePositionBias(nn.Module):
    """A T5/BEiT-style relative position bias for a token grid without cls token, zero-initialised.

    One learned scalar per relative offset and head: ``relative_position_bias_table`` has
    (2H-1)(2W-1) rows and ``num_heads`` columns. One instance is owned by the backbone and its
    bias is passed to every block of a kind (Li et al. 2021, Sec. 3.1), so the table is one
    parameter however many blocks use it.

    Args:
        grid_hw: the grid the table is made for (the window, or the global blocks' run grid).
        num_heads: attention heads.
    """

    def __init__(self, grid_hw: tuple[int, int], num_heads: int) -> None:
        super().__init__()
        self.grid_hw = (int(grid_hw[0]), int(grid_hw[1]))
        rows = (2 * self.grid_hw[0] - 1) * (2 * self.grid_hw[1] - 1)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(rows, num_heads))
        self.register_buffer("relative_position_index", relative_offset_index(self.grid_hw), persistent=False)

    def forward(self, grid_hw: tuple[int, int]) -> torch.Tensor:
        """The bias (heads, H*W, H*W) for ``grid_hw``; the table is resized if the grid differs."""
        table, index = self.relative_position_bias_table, self.relative_position_index
        if tuple(grid_hw) != self.grid_hw:
            table = resize_rel_pos_bias_table(table, self.grid_hw, tuple(grid_hw), cls_rows=0)
            index = relative_offset_index(tuple(grid_hw)).to(table.device)
        tokens = index.shape[0]
        return table[index.reshape(-1)].reshape(tokens, tokens, -1).permute(2, 0, 1)


def _relative_table(q_size: int, k_size: int, rel_pos: torch.Tensor) -> torch.Tensor:
    """Gather (q_size, k_size, C) embeddings of the offsets between query and key positions."""
    span = 2 * max(q_size, k_size) - 1
    rel_pos = resize_rel_pos_1d(rel_pos, span)
    q_coords = torch.arange(q_size, device=rel_pos.device)[:, None] * max(k_size / q_size, 1.0)
    k_coords = torch.arange(k_size, device=rel_pos.device)[None, :] * max(q_size / k_size, 1.0)
    offsets = (q_coords - k_coords) + (k_size - 1) * max(q_size / k_size, 1.0)
    return rel_pos[offsets.long()]


def decomposed_rel_pos_bias(
    q: torch.Tensor, rel_pos_h: torch.Tensor, rel_pos_w: torch.Tensor, grid_hw: tuple[int, int]
) -> torch.Tensor:
    """ViTDet's decomposed relative position bias (B, heads, H*W, H*W) from the raw queries.

    ``q`` is (B, heads, H*W, head_dim), before the softmax scale is applied.
    """
    height, width = grid_hw
    batch, heads, _, dim = q.shape
    table_h = _relative_table(height, height, rel_pos_h)
    table_w = _relative_table(width, width, rel_pos_w)
    q_grid = q.reshape(batch, heads, height, width, dim)
    bias_h = torch.einsum("bnhwc,hkc->bnhwk", q_grid, table_h.to(q.dtype))
    bias_w = torch.einsum("bnhwc,wkc->bnhwk", q_grid, table_w.to(q.dtype))
    bias = bias_h[..., :, None] + bias_w[..., None, :]
    return bias.reshape(batch, heads, height * width, height * width)


class Attention(nn.Module):
    """Multi-head self-attention (timm parameter names ``qkv`` and ``proj``) on fused SDPA.

    Args:
        dim: token width.
        num_heads: attention heads.
        qkv_bias: bias on the qkv projection.
        rel_pos_bias_grid: token grid of a BEiT relative position bias; None disables it.
        decomposed_rel_pos_size: (H, W) of the grid the ViTDet row/column tables are made for
            (the window, or the full grid for global blocks); None disables them.
        num_prefix_tokens: class and register tokens before the patch tokens (BEiT bias index).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        rel_pos_bias_grid: tuple[int, int] | None = None,
        decomposed_rel_pos_size: tuple[int, int] | None = None,
        num_prefix_tokens: int = 1,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.rel_pos_bias_grid = tuple(rel_pos_bias_grid) if rel_pos_bias_grid else None
        self.num_prefix_tokens = num_prefix_tokens
        self.relative_position_bias_table = None
        if self.rel_pos_bias_grid is not None:
            height, width = self.rel_pos_bias_grid
            num_entries = (2 * height - 1) * (2 * width - 1) + 3
            self.relative_position_bias_table = nn.Parameter(torch.zeros(num_entries, num_heads))
            index = beit_relative_position_index(self.rel_pos_bias_grid, num_prefix_tokens)
            self.register_buffer("relative_position_index", index, persistent=False)
        self.rel_pos_h = self.rel_pos_w = None
        if decomposed_rel_pos_size is not None:
            size_h, size_w = decomposed_rel_pos_size
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * size_h - 1, self.head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * size_w - 1, self.head_dim))

    def forward(
        self, x: torch.Tensor, grid_hw: tuple[int, int], attn_bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x: (B, T, C) tokens; ``grid_hw`` is the patch grid (T = P + H*W with P prefix tokens).

        ``attn_bias`` (heads, T, T) is added to the attention logits (a shared bias table's).
        """
        batch, tokens, channels = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        bias = attn_bias.to(q.dtype).unsqueeze(0) if attn_bias is not None else None
        if self.relative_position_bias_table is not None:
            table_bias = relative_position_bias(
                self.relative_position_bias_table, self.relative_position_index, self.rel_pos_bias_grid, grid_hw,
                self.num_prefix_tokens,
            )
            table_bias = table_bias.to(q.dtype).unsqueeze(0)
            bias = table_bias if bias is None else bias + table_bias
        if self.rel_pos_h is not None:
            decomposed = decomposed_rel_pos_bias(q, self.rel_pos_h, self.rel_pos_w, grid_hw)
            bias = decomposed if bias is None else bias + decomposed
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.proj(x.transpose(1, 2).reshape(batch, tokens, channels))
