"""Encoder options that set the ViT families apart, and the named families (torch-free).

A family is a named :class:`EncoderOptions` plus a checkpoint reader
(:mod:`mae_transfer.checkpoints.families`). Every option is off by default, so
``EncoderOptions()`` is the MAE encoder. Sources of each family's values:

- DINO v1 / iBOT (``facebookresearch/dino`` and ``bytedance/ibot`` ``vision_transformer.py``):
  LayerNorm eps 1e-6, position table resized by ``scale_factor`` with a +0.1 offset.
- DINOv2 (``facebookresearch/dinov2`` ``hub/backbones.py``, ``models/vision_transformer.py``):
  LayerScale, patch 14, eps 1e-6; without registers ``interpolate_offset=0.1`` and no
  antialias (the ``dino_offset`` rule: it differs from timm's and transformers' size-based
  resampling, and the original is followed here); with registers ``interpolate_offset=0`` and
  ``interpolate_antialias=True`` (size-based, antialiased); four register tokens without
  position embedding; giant with a SwiGLU MLP (``w12``/``w3``, hidden 4096).
- CLIP (OpenAI ``clip/model.py`` and open_clip ``transformer.py``): a norm before the blocks
  (``ln_pre``), patch embedding without bias, eps 1e-5; the activation (QuickGELU or GELU) is
  not in the weights and must be declared; open_clip resizes its table bicubically with
  antialias (``open_clip/model.py::resize_pos_embed``).
- SigLIP (transformers ``SiglipVisionModel``, big_vision ``vit.py``): no class token, tanh
  GELU, eps 1e-6; transformers resizes bicubically without antialias.
- I-JEPA (``facebookresearch/ijepa`` ``src/models/vision_transformer.py``): no class token,
  eps 1e-6, a fixed sin-cos table; the original's ``interpolate_pos_encoding`` assumes a cls
  slot the encoder does not have, so transformers' ``IJepaModel`` rule (bicubic, size-based)
  is used.
- BEiT / data2vec (``microsoft/unilm`` ``beit``, transformers ``BeitModel``): LayerScale,
  relative position bias, no key bias.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping

ACTIVATIONS = ("gelu", "quick_gelu", "gelu_tanh")
# How a learned position table is resampled to another grid (see models.pos_embed.resample_grid).
POS_RULES = ("bicubic", "bicubic_antialias", "dino_offset")
MLP_KINDS = ("mlp", "swiglu")
# The feature a classifier's linear probe reads: the cls token, the mean of the patch tokens
# (class and register tokens excluded) or both concatenated (DINOv2 eval/linear.py).
PROBE_FEATURES = ("cls", "avg", "cls+avg")


@dataclass(frozen=True)
class EncoderOptions:
    """The architecture options of one ViT family (defaults: the MAE encoder).

    Attributes:
        class_token: a class token leads the sequence (its slot leads the position table).
        register_tokens: register tokens after the class token, without position embedding.
        pre_norm: a LayerNorm before the first block (CLIP's ``ln_pre``, timm ``norm_pre``).
        patch_bias: the patch-embedding convolution has a bias.
        activation: the MLP activation, one of ``ACTIVATIONS``; None: not declared (a family
            whose weights do not tell it, CLIP, refuses to build until it is declared).
        norm_eps: the LayerNorm epsilon of every norm.
        pos_rule: how the position table is resampled to another grid, one of ``POS_RULES``.
        mlp: ``mlp`` (fc1, activation, fc2) or ``swiglu`` (DINOv2-g: packed fc1, SiLU gate).
        probe_feature: the feature the family's linear evaluation reads (``PROBE_FEATURES``).
    """

    class_token: bool = True
    register_tokens: int = 0
    pre_norm: bool = False
    patch_bias: bool = True
    activation: str | None = "gelu"
    norm_eps: float = 1e-6
    pos_rule: str = "bicubic"
    mlp: str = "mlp"
    probe_feature: str = "cls"

    def __post_init__(self) -> None:
        if self.activation is not None and self.activation not in ACTIVATIONS:
            raise ValueError(f"options.activation: expected one of {ACTIVATIONS}, got {self.activation!r}")
        if self.pos_rule not in POS_RULES:
            raise ValueError(f"options.pos_rule: expected one of {POS_RULES}, got {self.pos_rule!r}")
        if self.mlp not in MLP_KINDS:
            raise ValueError(f"options.mlp: expected one of {MLP_KINDS}, got {self.mlp!r}")
        if self.probe_feature not in PROBE_FEATURES:
            raise ValueError(f"options.probe_feature: expected one of {PROBE_FEATURES}, got {self.probe_feature!r}")
        if not isinstance(self.register_tokens, int) or self.register_tokens < 0:
            raise ValueError(f"options.register_tokens: expected an int >= 0, got {self.register_tokens!r}")
        if not self.norm_eps > 0:
            raise ValueError(f"options.norm_eps: expected a positive float, got {self.norm_eps!r}")
        if not self.class_token and self.probe_feature != "avg":
            raise ValueError(f"options.probe_feature {self.probe_feature!r} needs a class token; use 'avg'")

    @classmethod
    def parse(cls, value: EncoderOptions | Mapping[str, Any] | None) -> EncoderOptions:
        """From EncoderOptions, its fields as a dict (configs) or None (the MAE defaults)."""
        if value is None:
            return cls()
        if isinstance(value, EncoderOptions):
            return value
        if not isinstance(value, Mapping):
            raise TypeError(f"options: expected a dict of EncoderOptions fields, got {type(value).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(value) - known
        if unknown:
            raise ValueError(f"options: unknown key(s) {sorted(unknown)}; expected {sorted(known)}")
        return cls(**value)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (configs, JSON)."""
        return asdict(self)

    def differences(self, other: EncoderOptions) -> dict[str, tuple[Any, Any]]:
        """``{field: (self's value, other's value)}`` for every field that differs."""
        return {f.name: (getattr(self, f.name), getattr(other, f.name)) for f in fields(self)
                if getattr(self, f.name) != getattr(other, f.name)}


@dataclass(frozen=True)
class Family:
    """A named set of encoder options and what a user must declare for it.

    Attributes:
        name: the family's name (``dinov2_reg``); a matrix backbone's ``family:``.
        description: one line for ``inspect`` and the leaderboard.
        options: its encoder options.
        layer_scale: the family's blocks have LayerScale (loaded from the checkpoint).
        rel_pos_bias: the family's blocks have a BEiT relative position bias.
        declare: options its weights cannot tell, each with the hint shown to the user.
    """

    name: str
    description: str
    options: EncoderOptions
    layer_scale: bool = False
    rel_pos_bias: bool = False
    declare: tuple[tuple[str, str], ...] = ()

    def resolve(self, **declared: Any) -> EncoderOptions:
        """The options with the declared values (None: not declared) filled in.

        Raises:
            ValueError: a value this family needs is not declared.
        """
        values = {key: value for key, value in declared.items() if value is not None}
        options = replace(self.options, **values)
        for key, hint in self.declare:
            if getattr(options, key) is None:
                raise ValueError(f"family {self.name!r}: declare {key} ({hint}); the weights do not tell it")
        return options


_CLIP_ACTIVATION = (
    "activation",
    "quick_gelu for OpenAI CLIP weights and open_clip '-quickgelu' models, gelu for the other open_clip "
    "and LAION weights",
)
_DINO = EncoderOptions(pos_rule="dino_offset")
FAMILIES: dict[str, Family] = {family.name: family for family in (
    Family("mae", "MAE / supervised ViT (timm layout)", EncoderOptions()),
    Family("dino", "DINO v1 / iBOT teacher", _DINO),
    Family("dinov2", "DINOv2 (LayerScale, patch 14)", replace(_DINO, probe_feature="cls+avg"), layer_scale=True),
    Family("dinov2_reg", "DINOv2 with 4 registers",
           EncoderOptions(register_tokens=4, pos_rule="bicubic_antialias", probe_feature="cls+avg"), layer_scale=True),
    Family("clip", "CLIP (OpenAI / open_clip)",
           EncoderOptions(pre_norm=True, patch_bias=False, activation=None, norm_eps=1e-5,
                          pos_rule="bicubic_antialias"),
           declare=(_CLIP_ACTIVATION,)),
    Family("siglip", "SigLIP (no class token, tanh GELU)",
           EncoderOptions(class_token=False, activation="gelu_tanh", probe_feature="avg")),
    Family("ijepa", "I-JEPA (no class token)", EncoderOptions(class_token=False, probe_feature="avg")),
    Family("beit", "BEiT / data2vec (relative position bias, LayerScale)", EncoderOptions(probe_feature="avg"),
           layer_scale=True, rel_pos_bias=True),
)}
DEFAULT_FAMILY = "mae"


def family(name: str) -> Family:
    """The named family, or ValueError listing the known names."""
    if name not in FAMILIES:
        raise ValueError(f"unknown family {name!r}; expected one of {sorted(FAMILIES)}")
    return FAMILIES[name]
