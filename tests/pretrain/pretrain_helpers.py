"""Shared helpers of the pre-training tests: tiny models, the official key list, tiny datasets."""

from __future__ import annotations

from pathlib import Path

import torch

from mae_transfer.pretrain import MaskedAutoencoderViT, build_mae

REPO = Path(__file__).resolve().parents[2]
SMOKE_PRETRAIN = REPO / "configs" / "pretrain" / "mae_vit-tiny-d4_smoke-64px.py"
TINY = dict(img_size=64, depth=2, decoder=dict(embed_dim=64, depth=1, num_heads=4))


def tiny_mae(**overrides) -> MaskedAutoencoderViT:
    """A 2-block ViT-Tiny MAE at 64 px (16 patches) with a 64-d, 1-block decoder."""
    torch.manual_seed(0)
    return build_mae("vit_tiny_patch16", **{**TINY, **overrides})


def official_mae_shapes(
    embed_dim: int, depth: int, patch: int, grid: int, decoder_dim: int, decoder_depth: int, channels: int = 3
) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the official ``models_mae.MaskedAutoencoderViT`` state dict (mlp ratio 4, qkv bias).

    Written from the official models_mae.py and timm 0.3.2's Block (norm1, attn.qkv, attn.proj,
    norm2, mlp.fc1, mlp.fc2), not from this package's code.
    """
    def block(prefix: str, dim: int) -> dict[str, tuple[int, ...]]:
        return {
            f"{prefix}.norm1.weight": (dim,), f"{prefix}.norm1.bias": (dim,),
            f"{prefix}.attn.qkv.weight": (3 * dim, dim), f"{prefix}.attn.qkv.bias": (3 * dim,),
            f"{prefix}.attn.proj.weight": (dim, dim), f"{prefix}.attn.proj.bias": (dim,),
            f"{prefix}.norm2.weight": (dim,), f"{prefix}.norm2.bias": (dim,),
            f"{prefix}.mlp.fc1.weight": (4 * dim, dim), f"{prefix}.mlp.fc1.bias": (4 * dim,),
            f"{prefix}.mlp.fc2.weight": (dim, 4 * dim), f"{prefix}.mlp.fc2.bias": (dim,),
        }

    tokens = 1 + grid * grid
    shapes = {
        "cls_token": (1, 1, embed_dim),
        "pos_embed": (1, tokens, embed_dim),
        "patch_embed.proj.weight": (embed_dim, channels, patch, patch),
        "patch_embed.proj.bias": (embed_dim,),
        "norm.weight": (embed_dim,), "norm.bias": (embed_dim,),
        "mask_token": (1, 1, decoder_dim),
        "decoder_pos_embed": (1, tokens, decoder_dim),
        "decoder_embed.weight": (decoder_dim, embed_dim), "decoder_embed.bias": (decoder_dim,),
        "decoder_norm.weight": (decoder_dim,), "decoder_norm.bias": (decoder_dim,),
        "decoder_pred.weight": (patch * patch * channels, decoder_dim),
        "decoder_pred.bias": (patch * patch * channels,),
    }
    for index in range(depth):
        shapes.update(block(f"blocks.{index}", embed_dim))
    for index in range(decoder_depth):
        shapes.update(block(f"decoder_blocks.{index}", decoder_dim))
    return shapes


def state_shapes(state_dict) -> dict[str, tuple[int, ...]]:
    """Key -> shape of a state dict."""
    return {key: tuple(value.shape) for key, value in state_dict.items()}
