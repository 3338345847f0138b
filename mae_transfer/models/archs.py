"""Named ViT architectures (official MAE / timm naming) and the ``build_vit`` factory."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mae_transfer.models.vit import MAEViT


@dataclass(frozen=True)
class ViTArch:
    """The shape of a named ViT."""

    patch_size: int
    embed_dim: int
    depth: int
    num_heads: int


ARCHS: dict[str, ViTArch] = {
    "vit_tiny_patch16": ViTArch(16, 192, 12, 3),
    "vit_small_patch16": ViTArch(16, 384, 12, 6),
    "vit_base_patch16": ViTArch(16, 768, 12, 12),
    "vit_large_patch16": ViTArch(16, 1024, 24, 16),
    "vit_huge_patch14": ViTArch(14, 1280, 32, 16),
}


def build_vit(arch: str, **overrides: Any) -> MAEViT:
    """Build the named architecture; any :class:`MAEViT` keyword may be overridden.

    Example:
        >>> model = build_vit("vit_base_patch16", img_size=512, rel_pos_bias=True, out_indices=(3, 5, 7, 11))
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown ViT arch {arch!r}; expected one of {sorted(ARCHS)}")
    return MAEViT(**{**asdict(ARCHS[arch]), **overrides})
