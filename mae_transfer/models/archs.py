"""Named ViT architectures and the ``build_vit`` factory: the one arch vocabulary of the suite.

Each arch has one name (official MAE / timm: ``vit_base_patch16``) and three derived spellings:
``short`` (``vit-b``, in coco/ade20k config names and recipe tables), ``label`` (``ViT-B``, in
leaderboards) and ``config_name`` (``vit-base-p16``, in classification and pre-training config
names). Importing this module does not import torch (the matrix spec and planner read it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mae_transfer.models.vit import MAEViT


@dataclass(frozen=True)
class ViTArch:
    """The shape of a named ViT; ``size`` (``base``) gives its name and spellings."""

    size: str
    patch_size: int
    embed_dim: int
    depth: int
    num_heads: int

    @property
    def name(self) -> str:
        """``vit_base_patch16``: the arch name checkpoints, specs and configs use."""
        return f"vit_{self.size}_patch{self.patch_size}"

    @property
    def short(self) -> str:
        """``vit-b``: the spelling of coco/ade20k config names and the recipe tables."""
        return f"vit-{self.size[0]}"

    @property
    def label(self) -> str:
        """``ViT-B``: the spelling of leaderboards."""
        return f"ViT-{self.size[0].upper()}"

    @property
    def config_name(self) -> str:
        """``vit-base-p16``: the spelling of classification and pre-training config names."""
        return f"vit-{self.size}-p{self.patch_size}"

    def shape(self) -> dict[str, int]:
        """The :class:`MAEViT` keywords of this shape (patch_size, embed_dim, depth, num_heads)."""
        return {"patch_size": self.patch_size, "embed_dim": self.embed_dim, "depth": self.depth,
                "num_heads": self.num_heads}


ARCHS: dict[str, ViTArch] = {arch.name: arch for arch in (
    ViTArch("tiny", 16, 192, 12, 3),
    ViTArch("small", 16, 384, 12, 6),
    ViTArch("base", 16, 768, 12, 12),
    ViTArch("large", 16, 1024, 24, 16),
    ViTArch("huge", 14, 1280, 32, 16),
)}


def vit_arch(name: str) -> ViTArch:
    """The named arch, or ValueError listing the known names."""
    if name not in ARCHS:
        raise ValueError(f"unknown ViT arch {name!r}; expected one of {sorted(ARCHS)}")
    return ARCHS[name]


def build_vit(arch: str, **overrides: Any) -> MAEViT:
    """Build the named architecture; any :class:`MAEViT` keyword may be overridden.

    Example:
        >>> model = build_vit("vit_base_patch16", img_size=512, rel_pos_bias=True, out_indices=(3, 5, 7, 11))
    """
    from mae_transfer.models.vit import MAEViT

    return MAEViT(**{**vit_arch(arch).shape(), **overrides})
