"""timm (canonical) <-> OpenMMLab ViT parameter names: one table, both directions derived.

OpenMMLab's ViTs (MMPretrain/MMSelfSup ``VisionTransformer``, MMSeg ``MAE``/``BEiT``) name a
block ``layers.{i}`` and its parts ``ln1``, ``ffn.layers.0.0`` ...; the two families spell
layer scale differently (MMPretrain ``attn.gamma1.weight``, MMSeg ``gamma_1``).
"""

from __future__ import annotations

import re

# (timm name, OpenMMLab name) prefixes inside a block, after ``blocks.{i}.`` <-> ``layers.{i}.``.
BLOCK_NAMES: tuple[tuple[str, str], ...] = (
    ("norm1.", "ln1."),
    ("norm2.", "ln2."),
    ("mlp.fc1.", "ffn.layers.0.0."),
    ("mlp.fc2.", "ffn.layers.1."),
)
# Layer scale, by OpenMMLab family: (timm name, OpenMMLab name) inside a block.
LAYER_SCALE_NAMES: dict[str, tuple[tuple[str, str], ...]] = {
    "mmpretrain": (("ls1.gamma", "attn.gamma1.weight"), ("ls2.gamma", "ffn.gamma2.weight")),
    "mmseg": (("ls1.gamma", "gamma_1"), ("ls2.gamma", "gamma_2")),
}
# (timm name, OpenMMLab name) prefixes outside the blocks.
TOP_NAMES: tuple[tuple[str, str], ...] = (
    ("patch_embed.proj.", "patch_embed.projection."),
    ("norm.", "ln1."),
    ("fc_norm.", "ln2."),
)

_TIMM_BLOCK = re.compile(r"^blocks\.(\d+)\.(.*)$")
_MM_BLOCK = re.compile(r"^layers\.(\d+)\.(.*)$")


def _rename(name: str, pairs: tuple[tuple[str, str], ...]) -> str:
    """``name`` with the first matching ``(old, new)`` prefix replaced."""
    for old, new in pairs:
        if name.startswith(old):
            return new + name[len(old):]
    return name


def _swap(pairs: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    return tuple((mm, timm) for timm, mm in pairs)


def mm_to_timm(name: str) -> str:
    """An OpenMMLab ViT parameter name (either layer-scale spelling) in timm naming."""
    match = _MM_BLOCK.match(name)
    if match is None:
        return _rename(name, _swap(TOP_NAMES))
    in_block = BLOCK_NAMES + tuple(pair for pairs in LAYER_SCALE_NAMES.values() for pair in pairs)
    return f"blocks.{match.group(1)}.{_rename(match.group(2), _swap(in_block))}"


def timm_to_mm(name: str, family: str = "mmpretrain") -> str:
    """A timm ViT parameter name in OpenMMLab naming; ``family`` picks the layer-scale spelling."""
    if family not in LAYER_SCALE_NAMES:
        raise ValueError(f"unknown OpenMMLab family {family!r}; expected one of {sorted(LAYER_SCALE_NAMES)}")
    match = _TIMM_BLOCK.match(name)
    if match is None:
        return _rename(name, TOP_NAMES)
    in_block = BLOCK_NAMES + LAYER_SCALE_NAMES[family]
    return f"layers.{match.group(1)}.{_rename(match.group(2), in_block)}"
