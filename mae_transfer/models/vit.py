"""The MAE ViT encoder (He et al., "Masked Autoencoders Are Scalable Vision Learners", 2021).

Parameter names follow the official MAE / timm checkpoints, so those load without renaming.
Transfer options: BEiT-style relative position bias (ADE20K recipe), window attention with
global blocks and either ViTDet's decomposed relative positions or Li et al.'s shared bias
tables (COCO recipes, see :mod:`mae_transfer.models.window`), layer scale (BEiT, DINOv2),
drop path and activation checkpointing. The options that set the other ViT families apart
(register tokens, a norm before the blocks, no class token, patch embedding without bias, the
activation, the LayerNorm eps, a SwiGLU MLP, the family's position resampling rule) form one
:class:`~mae_transfer.models.options.EncoderOptions`; all off by default. All attention runs
through ``torch.nn.functional.scaled_dot_product_attention``.

Token order: ``[cls, registers..., patches]`` (DINOv2 with registers and timm). Registers get no
position embedding; the cls token gets the table's first slot when the family has a class token.

A backbone that serves only block maps to a detector or segmentor (``maps_only=True``) owns no
parameter that nothing uses, so multi-process training works with DDP's
``find_unused_parameters=False``: no final norm, no blocks after the last tapped one, and, in
window mode, no cls token and no register tokens (window attention runs on the patch tokens).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from timm.layers import DropPath, GELUTanh, GluMlp, LayerScale, Mlp, QuickGELU, trunc_normal_
from torch import nn
from torch.utils.checkpoint import checkpoint

from mae_transfer.models.attention import Attention, SharedRelativePositionBias
from mae_transfer.models.options import EncoderOptions
from mae_transfer.models.pos_embed import resize_pos_embed, sincos_2d_pos_embed
from mae_transfer.models.window import WindowConfig, pair, window_partition, window_unpartition

__all__ = ["Block", "EncoderOptions", "MAEViT", "PatchEmbed", "WindowConfig", "window_partition", "window_unpartition"]

ACTIVATION_LAYERS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "quick_gelu": QuickGELU, "gelu_tanh": GELUTanh}


def swiglu_hidden(dim: int, mlp_ratio: float) -> int:
    """Gated width of DINOv2's SwiGLU MLP: 2/3 of ``dim * mlp_ratio``, rounded up to 8 (4096 for ViT-g).

    dinov2 ``layers/swiglu_ffn.py`` ``SwiGLUFFNFused``; transformers ``Dinov2SwiGLUFFN``.
    """
    return (int(int(dim * mlp_ratio) * 2 / 3) + 7) // 8 * 8


def make_mlp(dim: int, mlp_ratio: float, options: EncoderOptions) -> nn.Module:
    """The block MLP: timm ``Mlp`` with the family's activation, or DINOv2-g's packed SwiGLU.

    The SwiGLU is timm's ``GluMlp`` with SiLU gating the first half (``gate_last=False``): the
    names ``fc1`` (2 x gated width) and ``fc2`` are those of timm's ``vit_giant_patch14_dinov2``.
    """
    if options.mlp == "swiglu":
        return GluMlp(dim, 2 * swiglu_hidden(dim, mlp_ratio), act_layer=nn.SiLU, gate_last=False)
    if options.activation is None:
        raise ValueError("options.activation is not declared (gelu, quick_gelu or gelu_tanh)")
    return Mlp(dim, int(dim * mlp_ratio), act_layer=ACTIVATION_LAYERS[options.activation])


class PatchEmbed(nn.Module):
    """Non-overlapping patches -> tokens, through one strided convolution (``proj``)."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int, bias: bool = True) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size, bias=bias)

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
        options: EncoderOptions | None = None,
        num_prefix_tokens: int = 1,
    ) -> None:
        super().__init__()
        options = options or EncoderOptions()
        self.window_size = window_size
        self.norm1 = nn.LayerNorm(dim, eps=options.norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias, rel_pos_bias_grid, decomposed_rel_pos_size, num_prefix_tokens)
        self.ls1 = LayerScale(dim, layer_scale_init) if layer_scale_init is not None else nn.Identity()
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=options.norm_eps)
        self.mlp = make_mlp(dim, mlp_ratio, options)
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
        options: the family's :class:`~mae_transfer.models.options.EncoderOptions` (or its
            fields as a dict); default the MAE encoder.
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
        options: EncoderOptions | dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        window = WindowConfig.parse(window)
        self.options = options = EncoderOptions.parse(options)
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

        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim, bias=options.patch_bias)
        if self.uses_cls_token:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        else:
            self.register_parameter("cls_token", None)
        if self.uses_prefix_tokens and options.register_tokens:
            self.reg_token = nn.Parameter(torch.zeros(1, options.register_tokens, embed_dim))
        else:
            self.register_parameter("reg_token", None)
        self.pos_embed = nn.Parameter(sincos_2d_pos_embed(embed_dim, self.grid_size, cls_token=options.class_token))
        # a plain None attribute when absent, as norm: a strict load still flags norm_pre.*
        self.norm_pre = nn.LayerNorm(embed_dim, eps=options.norm_eps) if options.pre_norm else None
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
                options=options,
                num_prefix_tokens=self.num_prefix_tokens,
                **self._window_options(i, embed_dim // num_heads),
            )
            for i in range(num_built)
        )
        self.shared_rel_pos = self._shared_rel_pos(num_built, num_heads)
        # a plain None attribute, not a registered empty module: strict loads still flag norm.*
        self.norm = None if maps_only else nn.LayerNorm(embed_dim, eps=options.norm_eps)
        self._init_weights()

    @property
    def uses_prefix_tokens(self) -> bool:
        """Whether class and register tokens may enter the sequence (not under window attention)."""
        return self.window is None

    @property
    def uses_cls_token(self) -> bool:
        """Whether the cls token enters the sequence (a family with one, not in window mode)."""
        return self.uses_prefix_tokens and self.options.class_token

    @property
    def num_register_tokens(self) -> int:
        """Register tokens in the sequence (0 in window mode)."""
        return self.reg_token.shape[1] if self.reg_token is not None else 0

    @property
    def num_prefix_tokens(self) -> int:
        """Tokens before the patch tokens in :meth:`forward_features`' output: cls and registers.

        Frozen-feature probes and poolers skip exactly these to reach the patch tokens.
        """
        return (1 if self.cls_token is not None else 0) + self.num_register_tokens

    @property
    def num_pos_prefix(self) -> int:
        """Slots before the grid in ``pos_embed``: 1 for a family with a class token, else 0."""
        return 1 if self.options.class_token else 0

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
        for token in (self.cls_token, self.reg_token):
            if token is not None:
                trunc_normal_(token, std=0.02)
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
        if self.cls_token is None and self.options.class_token:
            omitted.append(("cls_token", "window attention uses no cls token"))
        if self.reg_token is None and self.options.register_tokens:
            omitted.append(("reg_token", "window attention runs on the patch tokens: no register tokens"))
        if self.norm is None:
            omitted.append(("norm.*", "final norm unused: the backbone returns block maps"))
        last = len(self.blocks) - 1
        for index in range(len(self.blocks), self.depth):
            omitted.append((f"blocks.{index}.*", f"block {index} is after the last tapped block {last}"))
        return tuple(omitted)

    def no_weight_decay(self) -> set[str]:
        """Parameter names exempt from weight decay by name (1-D parameters are by rule)."""
        names = {"pos_embed"} | {name for name in ("cls_token", "reg_token") if getattr(self, name) is not None}
        names.update(name for name, _ in self.named_parameters() if name.endswith("relative_position_bias_table"))
        return names

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute block activations during backward to save memory."""
        self.grad_checkpointing = enable

    def _embed(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        x, grid_hw = self.patch_embed(x)
        prefix = self.num_pos_prefix
        pos_embed = resize_pos_embed(self.pos_embed, grid_hw, self.grid_size, prefix, rule=self.options.pos_rule)
        x = x + pos_embed[:, prefix:]
        tokens = []
        if self.cls_token is not None:
            tokens.append((self.cls_token + pos_embed[:, :1]).expand(x.shape[0], -1, -1))
        if self.reg_token is not None:
            tokens.append(self.reg_token.expand(x.shape[0], -1, -1))
        if tokens:
            x = torch.cat([*tokens, x], dim=1)
        if self.norm_pre is not None:
            x = self.norm_pre(x)
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

    def forward_blocks(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) -> the last block's tokens (B, P + N, C), before the final norm."""
        if self.maps_only:
            raise RuntimeError(
                "MAEViT built with maps_only=True has no final norm (and no block after the last "
                "tapped one): call forward_maps, or build it with maps_only=False"
            )
        x, grid_hw = self._embed(x)
        for block, bias in zip(self.blocks, self._block_biases(grid_hw)):
            x = self._run_block(block, x, grid_hw, bias)
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) -> normed tokens (B, P + N, C), P = ``num_prefix_tokens``
        (cls and registers; 0 in window mode and for families without them)."""
        return self.norm(self.forward_blocks(x))

    def forward_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Images -> one (B, C, H/p, W/p) map per ``out_indices`` entry, in block order (raw outputs).

        The class and register tokens are dropped before the patch tokens are reshaped. Blocks
        after the last requested index are not run.
        """
        x, grid_hw = self._embed(x)
        maps = []
        last = self.out_indices[-1]
        for index, (block, bias) in enumerate(zip(self.blocks[: last + 1], self._block_biases(grid_hw))):
            x = self._run_block(block, x, grid_hw, bias)
            if index in self.out_indices:
                tokens = x[:, self.num_prefix_tokens:]
                maps.append(tokens.transpose(1, 2).reshape(x.shape[0], self.embed_dim, *grid_hw))
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`forward_features`."""
        return self.forward_features(x)
