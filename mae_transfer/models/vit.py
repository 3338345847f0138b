"""The MAE ViT encoder (He et al., "Masked Autoencoders Are Scalable Vision Learners", 2021).

Parameter names follow the official MAE / timm checkpoints, so those load without renaming.
Transfer options: BEiT-style relative position bias (ADE20K recipe), ViTDet window attention
with decomposed relative positions and global blocks (COCO recipe), layer scale (BEiT
checkpoints), drop path and activation checkpointing. All attention runs through
``torch.nn.functional.scaled_dot_product_attention``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from timm.layers import DropPath, LayerScale, Mlp, trunc_normal_
from torch import nn
from torch.utils.checkpoint import checkpoint

from mae_transfer.models.attention import Attention
from mae_transfer.models.pos_embed import resize_pos_embed, sincos_2d_pos_embed


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


@dataclass(frozen=True)
class WindowConfig:
    """ViTDet-style window attention: blocks not in ``global_blocks`` attend within windows.

    Attributes:
        size: window side in patches (14 in ViTDet).
        global_blocks: indices of the blocks with global attention.
        rel_pos: decomposed relative positions in every block (zero-initialised).
    """

    size: int = 14
    global_blocks: tuple[int, ...] = ()
    rel_pos: bool = True


class PatchEmbed(nn.Module):
    """Non-overlapping patches -> tokens, through one strided convolution (``proj``)."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        height, width = x.shape[-2:]
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(f"input {height}x{width} is not divisible by the patch size {self.patch_size}")
        x = self.proj(x)
        return x.flatten(2).transpose(1, 2), (x.shape[2], x.shape[3])


def window_partition(x: torch.Tensor, window: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(B, H, W, C) -> (B * windows, window * window, C), zero-padding H and W to the window."""
    batch, height, width, channels = x.shape
    pad_h, pad_w = (-height) % window, (-width) % window
    x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    padded_h, padded_w = height + pad_h, width + pad_w
    x = x.reshape(batch, padded_h // window, window, padded_w // window, window, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, channels), (padded_h, padded_w)


def window_unpartition(
    windows: torch.Tensor, window: int, padded_hw: tuple[int, int], grid_hw: tuple[int, int]
) -> torch.Tensor:
    """Inverse of :func:`window_partition`: back to (B, H, W, C) without the padding."""
    padded_h, padded_w = padded_hw
    channels = windows.shape[-1]
    batch = windows.shape[0] // ((padded_h // window) * (padded_w // window))
    x = windows.reshape(batch, padded_h // window, padded_w // window, window, window, channels)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(batch, padded_h, padded_w, channels)
    return x[:, : grid_hw[0], : grid_hw[1]]


class Block(nn.Module):
    """Pre-norm transformer block: attention and MLP, each with layer scale and drop path."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path: float = 0.0,
        layer_scale_init: float | None = None,
        rel_pos_bias_grid: tuple[int, int] | None = None,
        window_size: int = 0,
        decomposed_rel_pos_size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.window_size = window_size
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, qkv_bias, rel_pos_bias_grid, decomposed_rel_pos_size)
        self.ls1 = LayerScale(dim, layer_scale_init) if layer_scale_init is not None else nn.Identity()
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU)
        self.ls2 = LayerScale(dim, layer_scale_init) if layer_scale_init is not None else nn.Identity()
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, grid_hw: tuple[int, int]) -> torch.Tensor:
        """x: (B, T, C); in window mode T = H*W tokens in row-major order of ``grid_hw``."""
        x = x + self.drop_path1(self.ls1(self._attend(self.norm1(x), grid_hw)))
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))

    def _attend(self, x: torch.Tensor, grid_hw: tuple[int, int]) -> torch.Tensor:
        if not self.window_size:
            return self.attn(x, grid_hw)
        batch, _, channels = x.shape
        windows, padded_hw = window_partition(x.reshape(batch, *grid_hw, channels), self.window_size)
        windows = self.attn(windows, (self.window_size, self.window_size))
        return window_unpartition(windows, self.window_size, padded_hw, grid_hw).reshape(batch, -1, channels)


class MAEViT(nn.Module):
    """ViT encoder with the MAE / timm parameter layout and the transfer options.

    Args:
        img_size: input size the position embedding is stored for (the pre-training size).
        patch_size: patch side in pixels.
        in_chans: input channels.
        embed_dim: token width.
        depth: number of blocks.
        num_heads: attention heads.
        mlp_ratio: MLP hidden width / embed_dim.
        qkv_bias: bias on the qkv projection.
        drop_path_rate: stochastic depth rate, increasing linearly over the blocks.
        layer_scale_init: initial layer-scale value; None for no layer scale.
        rel_pos_bias: BEiT-style relative position bias in every block (zero-initialised), for
            the token grid of ``img_size``.
        window: ViTDet window attention (a :class:`WindowConfig` or its fields as a dict).
            The cls token is not used in this mode.
        out_indices: blocks whose outputs :meth:`forward_maps` returns; default the last.
        grad_checkpointing: recompute block activations in the backward pass.
    """

    def __init__(
        self,
        img_size: int | Sequence[int] = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path_rate: float = 0.0,
        layer_scale_init: float | None = None,
        rel_pos_bias: bool = False,
        window: WindowConfig | dict[str, Any] | None = None,
        out_indices: Sequence[int] | None = None,
        grad_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(window, dict):
            window = WindowConfig(**{**window, "global_blocks": tuple(window.get("global_blocks", ()))})
        if window is not None and rel_pos_bias:
            raise ValueError("rel_pos_bias (BEiT, with cls token) and window attention (ViTDet) are exclusive")
        self.img_size = _pair(img_size)
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        self.depth = depth
        self.window = window
        self.grid_size = (self.img_size[0] // patch_size, self.img_size[1] // patch_size)
        self.grad_checkpointing = grad_checkpointing
        self.out_indices = tuple(sorted(out_indices)) if out_indices is not None else (depth - 1,)
        if any(not 0 <= index < depth for index in self.out_indices):
            raise ValueError(f"out_indices {self.out_indices} must lie in [0, {depth})")

        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(sincos_2d_pos_embed(embed_dim, self.grid_size, cls_token=True))
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # plain floats: meta-device safe
        self.blocks = nn.ModuleList(
            Block(
                embed_dim,
                num_heads,
                mlp_ratio,
                qkv_bias,
                drop_path=rates[i],
                layer_scale_init=layer_scale_init,
                rel_pos_bias_grid=self.grid_size if rel_pos_bias else None,
                **self._window_options(i, embed_dim // num_heads),
            )
            for i in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self._init_weights()

    @property
    def uses_cls_token(self) -> bool:
        """Whether the cls token enters the sequence (not in window mode)."""
        return self.window is None

    @property
    def num_layers(self) -> int:
        """Layer count for layer-wise lr decay: embeddings are layer 0, block i is layer i + 1."""
        return self.depth + 1

    def _window_options(self, index: int, head_dim: int) -> dict[str, Any]:
        if self.window is None:
            return {}
        is_global = index in self.window.global_blocks
        size = 0 if is_global else self.window.size
        rel_size = self.grid_size if is_global else (self.window.size, self.window.size)
        return {"window_size": size, "decomposed_rel_pos_size": rel_size if self.window.rel_pos else None}

    def _init_weights(self) -> None:
        trunc_normal_(self.cls_token, std=0.02)
        proj = self.patch_embed.proj.weight
        nn.init.xavier_uniform_(proj.view(proj.shape[0], -1))
        for module in self.blocks.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def no_weight_decay(self) -> set[str]:
        """Parameter names exempt from weight decay by name (1-D parameters are by rule)."""
        names = {"pos_embed", "cls_token"}
        names.update(name for name, _ in self.named_parameters() if name.endswith("relative_position_bias_table"))
        return names

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute block activations during backward to save memory."""
        self.grad_checkpointing = enable

    def _embed(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        x, grid_hw = self.patch_embed(x)
        pos_embed = resize_pos_embed(self.pos_embed, grid_hw, self.grid_size, num_prefix_tokens=1)
        x = x + pos_embed[:, 1:]
        if self.uses_cls_token:
            cls = (self.cls_token + pos_embed[:, :1]).expand(x.shape[0], -1, -1)
            x = torch.cat([cls, x], dim=1)
        return x, grid_hw

    def _run_block(self, block: Block, x: torch.Tensor, grid_hw: tuple[int, int]) -> torch.Tensor:
        if self.grad_checkpointing and torch.is_grad_enabled():
            return checkpoint(block, x, grid_hw, use_reentrant=False)
        return block(x, grid_hw)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) -> normed tokens (B, 1 + N, C); (B, N, C) in window mode."""
        x, grid_hw = self._embed(x)
        for block in self.blocks:
            x = self._run_block(block, x, grid_hw)
        return self.norm(x)

    def forward_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Images -> one (B, C, H/p, W/p) map per ``out_indices`` entry, in block order (raw outputs).

        Blocks after the last requested index are not run.
        """
        x, grid_hw = self._embed(x)
        maps = []
        for index, block in enumerate(self.blocks[: max(self.out_indices) + 1]):
            x = self._run_block(block, x, grid_hw)
            if index in self.out_indices:
                tokens = x[:, 1:] if self.uses_cls_token else x
                maps.append(tokens.transpose(1, 2).reshape(x.shape[0], self.embed_dim, *grid_hw))
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`forward_features`."""
        return self.forward_features(x)
