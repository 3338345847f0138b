"""The MAE ViT encoder (He et al., "Masked Autoencoders Are Scalable Vision Learners", 2021).

Parameter names follow the official MAE / timm checkpoints, so those load without renaming.
Transfer options: BEiT-style relative position bias (ADE20K recipe), window attention with
global blocks and either ViTDet's decomposed relative positions or Li et al.'s shared bias
tables (COCO recipes, see :mod:`mae_transfer.models.window`), layer scale (BEiT checkpoints),
drop path and activation checkpointing. All attention runs through
``torch.nn.functional.scaled_dot_product_attention``.

A backbone that serves only block maps to a detector or segmentor (``maps_only=True``) owns no
parameter that nothing uses, so multi-process training works with DDP's
``find_unused_parameters=False``: no final norm, no blocks after the last tapped one, and, in
window mode, no cls token (as in every mode with window attention).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from timm.layers import DropPath, LayerScale, Mlp, trunc_normal_
from torch import nn
from torch.utils.checkpoint import checkpoint

from mae_transfer.models.attention import Attention, SharedRelativePositionBias
from mae_transfer.models.pos_embed import resize_pos_embed, sincos_2d_pos_embed
from mae_transfer.models.window import WindowConfig, pair, window_partition, window_unpartition

__all__ = ["Block", "MAEViT", "PatchEmbed", "WindowConfig", "window_partition", "window_unpartition"]


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

    def forward(
        self, x: torch.Tensor, grid_hw: tuple[int, int], attn_bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x: (B, T, C); in window mode T = H*W tokens in row-major order of ``grid_hw``.

        ``attn_bias`` (heads, T', T'): a shared relative position bias for the attended grid (the
        window in windowed blocks).
        """
        x = x + self.drop_path1(self.ls1(self._attend(self.norm1(x), grid_hw, attn_bias)))
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))

    def _attend(self, x: torch.Tensor, grid_hw: tuple[int, int], attn_bias: torch.Tensor | None) -> torch.Tensor:
        if not self.window_size:
            return self.attn(x, grid_hw, attn_bias)
        batch, _, channels = x.shape
        windows, padded_hw = window_partition(x.reshape(batch, *grid_hw, channels), self.window_size)
        windows = self.attn(windows, (self.window_size, self.window_size), attn_bias)
        return window_unpartition(windows, self.window_size, padded_hw, grid_hw).reshape(batch, -1, channels)


class MAEViT(nn.Module):
    """ViT encoder with the MAE / timm parameter layout and the transfer options.

    Args:
        img_size: input size the position embedding is stored for (the pre-training size).
        patch_size: patch side in pixels.
        in_chans: input channels.
        embed_dim: token width.
        depth: number of blocks of the architecture (layer ids count them all, see
            ``num_layers``).
        num_heads: attention heads.
        mlp_ratio: MLP hidden width / embed_dim.
        qkv_bias: bias on the qkv projection.
        drop_path_rate: stochastic depth rate, increasing linearly over the ``depth`` blocks.
        layer_scale_init: initial layer-scale value; None for no layer scale.
        rel_pos_bias: BEiT-style relative position bias in every block (zero-initialised), for
            the token grid of ``img_size``.
        window: window attention (a :class:`~mae_transfer.models.window.WindowConfig` or its
            fields as a dict). The model then has no cls token: none enters the sequence.
        out_indices: blocks whose outputs :meth:`forward_maps` returns; default the last.
        maps_only: the model serves :meth:`forward_maps` only (a detection or segmentation
            backbone): it builds no final norm and no block after the last of ``out_indices``,
            so every parameter it owns receives a gradient; :meth:`forward_features` refuses.
            Checkpoint keys of the parts not built are listed by :meth:`omitted_keys`.
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
        maps_only: bool = False,
        grad_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        window = WindowConfig.parse(window)
        if window is not None and rel_pos_bias:
            raise ValueError("rel_pos_bias (BEiT, with cls token) and window attention are exclusive")
        self.img_size = pair(img_size)
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        self.depth = depth
        self.window = window
        self.maps_only = maps_only
        self.grid_size = (self.img_size[0] // patch_size, self.img_size[1] // patch_size)
        self.grad_checkpointing = grad_checkpointing
        self.out_indices = tuple(sorted(out_indices)) if out_indices is not None else (depth - 1,)
        if any(not 0 <= index < depth for index in self.out_indices):
            raise ValueError(f"out_indices {self.out_indices} must lie in [0, {depth})")
        num_built = self.out_indices[-1] + 1 if maps_only else depth

        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        if self.uses_cls_token:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        else:
            self.register_parameter("cls_token", None)
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
            for i in range(num_built)
        )
        self.shared_rel_pos = self._shared_rel_pos(num_built, num_heads)
        # a plain None attribute, not a registered empty module: strict loads still flag norm.*
        self.norm = None if maps_only else nn.LayerNorm(embed_dim, eps=1e-6)
        self._init_weights()

    @property
    def uses_cls_token(self) -> bool:
        """Whether the cls token enters the sequence (not in window mode)."""
        return self.window is None

    @property
    def num_prefix_tokens(self) -> int:
        """Tokens before the patch tokens in :meth:`forward_features`' output (the cls token, if any)."""
        return 1 if self.cls_token is not None else 0

    @property
    def num_layers(self) -> int:
        """Layer count for layer-wise lr decay: embeddings are layer 0, block i is layer i + 1.

        ``depth + 1`` for the whole architecture, also when ``maps_only`` builds fewer blocks,
        so a block keeps its layer id (and lr scale) whatever is tapped.
        """
        return self.depth + 1

    @property
    def global_grid(self) -> tuple[int, int]:
        """Token grid the global blocks' relative position tables are made for."""
        if self.window is not None and self.window.global_grid is not None:
            return self.window.global_grid
        return self.grid_size

    def _window_options(self, index: int, head_dim: int) -> dict[str, Any]:
        if self.window is None:
            return {}
        is_global = self.window.is_global(index)
        rel_size = self.global_grid if is_global else (self.window.size, self.window.size)
        decomposed = rel_size if self.window.rel_pos == "decomposed" else None
        return {"window_size": 0 if is_global else self.window.size, "decomposed_rel_pos_size": decomposed}

    def _shared_rel_pos(self, num_built: int, num_heads: int) -> nn.ModuleDict | None:
        """Li et al.'s shared tables, one per kind of block that is built (window, global)."""
        if self.window is None or self.window.rel_pos != "shared":
            return None
        kinds = {"global" if self.window.is_global(i) else "window" for i in range(num_built)}
        grids = {"window": (self.window.size, self.window.size), "global": self.global_grid}
        return nn.ModuleDict({kind: SharedRelativePositionBias(grids[kind], num_heads) for kind in sorted(kinds)})

    def _init_weights(self) -> None:
        if self.cls_token is not None:
            trunc_normal_(self.cls_token, std=0.02)
        proj = self.patch_embed.proj.weight
        nn.init.xavier_uniform_(proj.view(proj.shape[0], -1))
        for module in self.blocks.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def omitted_keys(self) -> tuple[tuple[str, str], ...]:
        """Checkpoint keys (fnmatch patterns) of the architecture this model does not own, each with why.

        :func:`mae_transfer.checkpoints.load_pretrained` reports matching checkpoint keys as
        dropped with these reasons.
        """
        omitted = []
        if self.cls_token is None:
            omitted.append(("cls_token", "window attention uses no cls token"))
        if self.norm is None:
            omitted.append(("norm.*", "final norm unused: the backbone returns block maps"))
        last = len(self.blocks) - 1
        for index in range(len(self.blocks), self.depth):
            omitted.append((f"blocks.{index}.*", f"block {index} is after the last tapped block {last}"))
        return tuple(omitted)

    def no_weight_decay(self) -> set[str]:
        """Parameter names exempt from weight decay by name (1-D parameters are by rule)."""
        names = {"pos_embed"} | ({"cls_token"} if self.cls_token is not None else set())
        names.update(name for name, _ in self.named_parameters() if name.endswith("relative_position_bias_table"))
        return names

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute block activations during backward to save memory."""
        self.grad_checkpointing = enable

    def _embed(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        x, grid_hw = self.patch_embed(x)
        pos_embed = resize_pos_embed(self.pos_embed, grid_hw, self.grid_size, num_prefix_tokens=1)
        x = x + pos_embed[:, 1:]
        if self.cls_token is not None:
            cls = (self.cls_token + pos_embed[:, :1]).expand(x.shape[0], -1, -1)
            x = torch.cat([cls, x], dim=1)
        return x, grid_hw

    def _block_biases(self, grid_hw: tuple[int, int]) -> list[torch.Tensor | None]:
        """The shared relative position bias of every built block (None without shared tables)."""
        if self.shared_rel_pos is None:
            return [None] * len(self.blocks)
        window = (self.window.size, self.window.size)
        biases = {kind: table(grid_hw if kind == "global" else window) for kind, table in self.shared_rel_pos.items()}
        return [biases["global" if self.window.is_global(i) else "window"] for i in range(len(self.blocks))]

    def _run_block(
        self, block: Block, x: torch.Tensor, grid_hw: tuple[int, int], attn_bias: torch.Tensor | None
    ) -> torch.Tensor:
        if self.grad_checkpointing and torch.is_grad_enabled():
            return checkpoint(block, x, grid_hw, attn_bias, use_reentrant=False)
        return block(x, grid_hw, attn_bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) -> normed tokens (B, 1 + N, C); (B, N, C) in window mode."""
        if self.maps_only:
            raise RuntimeError(
                "MAEViT built with maps_only=True has no final norm (and no block after the last "
                "tapped one): call forward_maps, or build it with maps_only=False"
            )
        x, grid_hw = self._embed(x)
        for block, bias in zip(self.blocks, self._block_biases(grid_hw)):
            x = self._run_block(block, x, grid_hw, bias)
        return self.norm(x)

    def forward_last_blocks(self, x: torch.Tensor, n: int) -> list[torch.Tensor]:
        """Images -> the outputs of the last ``n`` blocks, each through the final norm, in block order.

        Each is (B, P + N, C) like :meth:`forward_features` (P = :attr:`num_prefix_tokens`), and
        the last equals ``forward_features(x)``: the frozen features DINOv2's linear evaluation
        reads (``get_intermediate_layers(..., norm=True)``; timm's
        ``VisionTransformer.get_intermediate_layers``).
        """
        if self.maps_only:
            raise RuntimeError("MAEViT built with maps_only=True has no final norm: forward_last_blocks needs "
                               "maps_only=False")
        if not 1 <= n <= len(self.blocks):
            raise ValueError(f"forward_last_blocks: n={n} must lie in [1, {len(self.blocks)}] (the blocks built)")
        x, grid_hw = self._embed(x)
        first = len(self.blocks) - n
        outputs = []
        for index, (block, bias) in enumerate(zip(self.blocks, self._block_biases(grid_hw))):
            x = self._run_block(block, x, grid_hw, bias)
            if index >= first:
                outputs.append(self.norm(x))
        return outputs

    def forward_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Images -> one (B, C, H/p, W/p) map per ``out_indices`` entry, in block order (raw outputs).

        Blocks after the last requested index are not run.
        """
        x, grid_hw = self._embed(x)
        maps = []
        last = self.out_indices[-1]
        for index, (block, bias) in enumerate(zip(self.blocks[: last + 1], self._block_biases(grid_hw))):
            x = self._run_block(block, x, grid_hw, bias)
            if index in self.out_indices:
                tokens = x[:, 1:] if self.cls_token is not None else x
                maps.append(tokens.transpose(1, 2).reshape(x.shape[0], self.embed_dim, *grid_hw))
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`forward_features`."""
        return self.forward_features(x)
