"""Named ViT architectures and the ``build_vit`` factory: the one arch vocabulary of the suite.

Each arch has one name (official MAE / timm: ``vit_base_patch16``) and three derived spellings:
``short`` (``vit-b``, in coco/ade20k config names and recipe tables), ``label`` (``ViT-B``, in
leaderboards) and ``config_name`` (``vit-base-p16``, in classification and pre-training config
names). Importing this module does not import torch (the matrix spec and planner read it).

The other axis of the vocabulary is the family (:data:`mae_transfer.models.options.FAMILIES`):
a named set of encoder options (registers, pre-norm, no class token, activation, eps...) that
``build_vit(arch, family=...)`` applies to any shape, e.g. ``build_vit("vit_base_patch14",
family="dinov2_reg")``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mae_transfer.models.options import DEFAULT_FAMILY, EncoderOptions, Family
from mae_transfer.models.options import family as get_family

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
        """``ViT-B``: the spelling of leaderboards (DINOv2's 1.1B giant is ``ViT-g``)."""
        return "ViT-g" if self.size == "giant" else f"ViT-{self.size[0].upper()}"

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
    # patch 14 at every size: DINOv2, CLIP ViT-L/14, I-JEPA ViT-H/14; giant = DINOv2's ViT-g/14
    ViTArch("small", 14, 384, 12, 6),
    ViTArch("base", 14, 768, 12, 12),
    ViTArch("large", 14, 1024, 24, 16),
    ViTArch("giant", 14, 1536, 40, 24),
)}


def vit_arch(name: str) -> ViTArch:
    """The named arch, or ValueError listing the known names."""
    if name not in ARCHS:
        raise ValueError(f"unknown ViT arch {name!r}; expected one of {sorted(ARCHS)}")
    return ARCHS[name]


# LayerScale init of a family whose checkpoints carry it (loaded over it): DINOv2 1e-5
# (hub/backbones.py init_values), BEiT 0.1 (beit run_class_finetuning.py --layer_scale_init_value).
LAYER_SCALE_INIT = {"dinov2": 1e-5, "dinov2_reg": 1e-5, "beit": 0.1}


def family_options(
    family: str | None = None, activation: str | None = None, norm_eps: float | None = None,
    arch: str | None = None,
) -> EncoderOptions:
    """The encoder options of ``family`` (default ``mae``) with the declared values filled in.

    DINOv2's giant (``vit_giant_patch14``) has the SwiGLU MLP of the official weights.

    Raises:
        ValueError: unknown family, or a value the family needs (CLIP's activation) not declared.
    """
    spec: Family = get_family(family or DEFAULT_FAMILY)
    mlp = "swiglu" if spec.name.startswith("dinov2") and arch == "vit_giant_patch14" else None
    return spec.resolve(activation=activation, norm_eps=norm_eps, mlp=mlp)


def build_vit(
    arch: str,
    family: str | None = None,
    activation: str | None = None,
    norm_eps: float | None = None,
    **overrides: Any,
) -> MAEViT:
    """Build the named architecture in a family; any :class:`MAEViT` keyword may be overridden.

    Args:
        arch: an ``ARCHS`` name (the shape).
        family: a ``FAMILIES`` name (default ``mae``): the encoder options, LayerScale and the
            relative position bias its checkpoints carry.
        activation: declare the MLP activation (``gelu``, ``quick_gelu``, ``gelu_tanh``); CLIP
            needs it, as its weights do not tell it.
        norm_eps: declare the LayerNorm eps (default: the family's).
        **overrides: ``MAEViT`` keywords; ``options`` replaces the family's options whole.

    Example:
        >>> model = build_vit("vit_base_patch16", img_size=512, rel_pos_bias=True, out_indices=(3, 5, 7, 11))
        >>> dinov2 = build_vit("vit_base_patch14", family="dinov2_reg", img_size=518)
    """
    from mae_transfer.models.vit import MAEViT

    name = family or DEFAULT_FAMILY
    spec = get_family(name)
    defaults: dict[str, Any] = {}
    if "options" not in overrides:
        defaults["options"] = family_options(name, activation, norm_eps, arch)
    elif activation is not None or norm_eps is not None:
        raise ValueError("build_vit: pass activation/norm_eps or options, not both")
    if spec.layer_scale:
        defaults["layer_scale_init"] = LAYER_SCALE_INIT[name]
    if spec.rel_pos_bias and overrides.get("window") is None:
        defaults["rel_pos_bias"] = True
    return MAEViT(**{**vit_arch(arch).shape(), **defaults, **overrides})
