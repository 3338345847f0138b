"""The file layouts a generated checkpoint of each ViT family can be written in (imports without torch).

A matrix backbone ``checkpoint: generate:ARCH`` with ``family:`` is written in the family's own
layout, the one its users download (the first format listed), or in the ``format:`` it declares
among the others. :mod:`mae_transfer.checkpoints.families.native` writes them; the readers read
them back. Families without a writer of their own naming are written as timm state dicts.
"""

from __future__ import annotations

# family -> formats (``checkpoints.formats.FORMATS`` names) its generated checkpoints are written in; first: its own
WRITTEN_FORMATS: dict[str, tuple[str, ...]] = {
    "mae": ("mae", "timm"),                          # {'model': state_dict}, as the official MAE release
    "dino": ("timm",),                               # dino_vitbase16_pretrain.pth: a bare timm-named dict
    "dinov2": ("dinov2", "hf_dinov2", "timm"),       # dinov2_vitb14_pretrain.pth (hub), facebook/dinov2-base
    "dinov2_reg": ("dinov2", "hf_dinov2", "timm"),   # dinov2_vitb14_reg4_pretrain.pth, ..._with_registers-base
    "clip": ("openai_clip", "hf_clip", "timm"),      # open_clip's visual.* dict, openai/clip-vit-base-patch16
    "siglip": ("hf_clip", "timm"),                   # google/siglip-base-patch16-224 (a HuggingFace directory)
    "ijepa": ("ijepa", "timm"),                      # IN1K-vit.h.14-300e.pth.tar ({'encoder': {'module.' + k}})
    "beit": ("timm",),                               # no writer of BEiT's own naming (q_bias/v_bias, gamma_1)
}
# formats written as a HuggingFace model directory (config.json + model.safetensors)
DIRECTORY_FORMATS = ("hf_dinov2", "hf_clip")


def native_format(family: str) -> str:
    """The layout a family's users download (the default of a generated checkpoint)."""
    return WRITTEN_FORMATS[family][0]


def written_format(family: str | None, fmt: str | None) -> str:
    """The format a generated checkpoint of ``family`` (None: mae) is written in: ``fmt``, or the family's own.

    Raises:
        ValueError: ``fmt`` is not one the family can be written in.
    """
    family = family or "mae"
    if fmt in (None, "auto"):
        return native_format(family)
    if fmt not in WRITTEN_FORMATS[family]:
        raise ValueError(f"a generated {family} checkpoint is written in one of {', '.join(WRITTEN_FORMATS[family])}, "
                         f"not {fmt!r}")
    return fmt
