"""Architecture detection from a canonical (timm-named) state dict's shapes."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping

from mae_transfer.checkpoints.resize import rel_pos_table_grid
from mae_transfer.models.archs import ARCHS
from mae_transfer.models.pos_embed import square_grid

_BLOCK = re.compile(r"^blocks\.(\d+)\.")


@dataclass(frozen=True)
class ArchShape:
    """Encoder shape read off a state dict.

    Attributes:
        embed_dim: token width.
        depth: number of transformer blocks.
        patch_size: patch side in pixels.
        num_heads: attention heads when a relative position table reveals them, else None.
    """

    embed_dim: int
    depth: int
    patch_size: int
    num_heads: int | None = None

    def describe(self) -> str:
        """E.g. ``vit_base_patch16 (768-d, 12 blocks, patch 16)``."""
        name = arch_name(self)
        dims = f"{self.embed_dim}-d, {self.depth} blocks, patch {self.patch_size}"
        return f"{name} ({dims})" if name else f"unknown ViT ({dims})"


def arch_shape(state_dict: Mapping[str, Any]) -> ArchShape | None:
    """The encoder shape of a canonical state dict, or None without a ViT patch embedding."""
    weight = state_dict.get("patch_embed.proj.weight")
    if weight is None or len(weight.shape) != 4:
        return None
    blocks = {int(m.group(1)) for key in state_dict if (m := _BLOCK.match(key))}
    heads = None
    for key, value in state_dict.items():
        if key.endswith("attn.relative_position_bias_table") and len(value.shape) == 2:
            heads = int(value.shape[1])
            break
    return ArchShape(
        embed_dim=int(weight.shape[0]),
        depth=max(blocks) + 1 if blocks else 0,
        patch_size=int(weight.shape[-1]),
        num_heads=heads,
    )


def arch_name(shape: ArchShape | None) -> str | None:
    """The known architecture with this embed dim, depth and patch size, or None."""
    if shape is None:
        return None
    for name, arch in ARCHS.items():
        if (shape.embed_dim, shape.depth, shape.patch_size) == (arch.embed_dim, arch.depth, arch.patch_size) and (
            shape.num_heads in (None, arch.num_heads)
        ):
            return name
    return None


def detect_arch(state_dict: Mapping[str, Any]) -> str | None:
    """Name of the known architecture a state dict holds (any supported format), or None."""
    if "patch_embed.proj.weight" not in state_dict:
        from mae_transfer.checkpoints.convert import convert_state_dict
        from mae_transfer.checkpoints.errors import CheckpointError

        try:
            state_dict = convert_state_dict(state_dict)
        except CheckpointError:
            return None
    return arch_name(arch_shape(state_dict))


def infer_model_overrides(
    state_dict: Mapping[str, Any], *, shape_overrides: bool = True
) -> dict[str, Any]:
    """`build_vit` keywords that make a model whose keys and shapes match a canonical state dict.

    The result covers the input grid (from ``pos_embed``), layer scale, BEiT relative position
    bias, ViTDet window attention (the global blocks' grid from their table length) and, with
    ``shape_overrides`` and a non-standard shape,
    ``embed_dim``/``depth``/``patch_size``/``num_heads`` (heads read off a relative position
    table, else one per 64 channels).
    """
    shape = arch_shape(state_dict)
    overrides: dict[str, Any] = {}
    if shape is None:
        return overrides
    if shape_overrides and arch_name(shape) is None:
        overrides.update(embed_dim=shape.embed_dim, depth=shape.depth, patch_size=shape.patch_size)
        overrides["num_heads"] = shape.num_heads or max(1, shape.embed_dim // 64)
    pos = state_dict.get("pos_embed")
    if pos is not None and len(pos.shape) == 3:
        grid = square_grid(pos.shape[1] - 1)
        if grid is not None:
            overrides["img_size"] = grid[0] * shape.patch_size
    else:
        table = next(
            (v for k, v in state_dict.items() if k.endswith("attn.relative_position_bias_table")),
            None,
        )
        grid = rel_pos_table_grid(table.shape[0]) if table is not None else None
        if grid is not None:
            overrides["img_size"] = grid[0] * shape.patch_size
    if any(k.endswith(".ls1.gamma") for k in state_dict):
        overrides["layer_scale_init"] = 0.1
    if any(k.endswith("attn.relative_position_bias_table") for k in state_dict):
        overrides["rel_pos_bias"] = True
    window = _infer_window(state_dict)
    if window is not None:
        overrides["window"] = window
    return overrides


def _infer_window(state_dict: Mapping[str, Any]) -> dict[str, Any] | None:
    """Window size, global blocks and their grid from ViTDet ``rel_pos_h`` lengths (2S-1 per block)."""
    lengths = {
        int(m.group(1)): int(value.shape[0])
        for key, value in state_dict.items()
        if key.endswith(".attn.rel_pos_h") and (m := _BLOCK.match(key))
    }
    if not lengths:
        return None
    window_len = Counter(lengths.values()).most_common(1)[0][0]
    global_blocks = sorted(i for i, n in lengths.items() if n != window_len)
    global_lens = {lengths[i] for i in global_blocks}
    window = {"size": (window_len + 1) // 2, "global_blocks": global_blocks, "rel_pos": "decomposed"}
    if len(global_lens) == 1:
        window["global_grid"] = (global_lens.pop() + 1) // 2
    return window
