"""Window attention for detection backbones: the options and the token partitioning.

Two recipes put window attention into a plain ViT for COCO, with global attention in the last
block of each of four block groups:

- ViTDet (Li et al. 2022, "Exploring Plain Vision Transformer Backbones for Object Detection";
  detectron2 ``projects/ViTDet``): decomposed relative positions, one row and one column table
  per block, each sized for the grid its block runs at (2*14-1 = 27 rows for a 14-token window,
  2*64-1 = 127 for a global block on a 1024-pixel input with patch 16);
- Li et al. 2021 ("Benchmarking Detection Transfer Learning with Vision Transformers",
  arXiv 2111.11429, Sec. 3.1; the recipe of MAE's appendix A.3): T5/BEiT-style relative
  position biases (one scalar per relative offset and head), zero-initialised, with one table
  shared by all the windowed blocks and one shared by all the global blocks.

In both, the sequence has no cls token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F

REL_POS_KINDS = ("decomposed", "shared")


def pair(value: int | Sequence[int]) -> tuple[int, int]:
    """``7`` -> ``(7, 7)``; ``(7, 9)`` -> ``(7, 9)``."""
    return (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[1]))


@dataclass(frozen=True)
class WindowConfig:
    """Window attention: blocks not in ``global_blocks`` attend within ``size`` x ``size`` windows.

    Attributes:
        size: window side in tokens (14 in ViTDet and Li et al. 2021).
        global_blocks: indices of the blocks with global attention.
        rel_pos: relative positions: ``"decomposed"`` (ViTDet, per block; ``True`` means the
            same), ``"shared"`` (Li et al. 2021: one BEiT-style bias table for the windowed
            blocks and one for the global blocks) or None (``False``) for none.
        global_grid: token grid the global blocks run at, which sizes their relative position
            tables (64 for a 1024-pixel input with patch 16); None takes the pre-training grid
            of the position embedding. Other grids are served by resizing the tables at run time.
    """

    size: int = 14
    global_blocks: tuple[int, ...] = ()
    rel_pos: str | bool | None = "decomposed"
    global_grid: int | tuple[int, int] | None = None

    def __post_init__(self) -> None:
        rel_pos = self.rel_pos
        if isinstance(rel_pos, bool):
            rel_pos = "decomposed" if rel_pos else None
        if rel_pos is not None and rel_pos not in REL_POS_KINDS:
            raise ValueError(
                f"window.rel_pos: expected one of {REL_POS_KINDS}, True, False or None, got {self.rel_pos!r}"
            )
        if not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"window.size: expected a positive int, got {self.size!r}")
        grid = pair(self.global_grid) if self.global_grid is not None else None
        if grid is not None and min(grid) < 1:
            raise ValueError(f"window.global_grid: expected positive sides, got {self.global_grid!r}")
        object.__setattr__(self, "rel_pos", rel_pos)
        object.__setattr__(self, "global_blocks", tuple(int(i) for i in self.global_blocks))
        object.__setattr__(self, "global_grid", grid)

    @classmethod
    def parse(cls, value: WindowConfig | dict[str, Any] | None) -> WindowConfig | None:
        """From a WindowConfig, its fields as a dict (configs), or None."""
        if value is None or isinstance(value, WindowConfig):
            return value
        if not isinstance(value, dict):
            raise TypeError(f"window: expected a dict of WindowConfig fields or None, got {type(value).__name__}")
        unknown = set(value) - {"size", "global_blocks", "rel_pos", "global_grid"}
        if unknown:
            raise ValueError(
                f"window: unknown key(s) {sorted(unknown)}; expected size, global_blocks, rel_pos, global_grid"
            )
        return cls(**value)

    def is_global(self, index: int) -> bool:
        """Whether block ``index`` attends globally."""
        return index in self.global_blocks


def window_partition(x: torch.Tensor, window: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(B, H, W, C) -> (B * windows, window * window, C), zero-padding H and W to the window."""
    batch, height, width, channels = x.shape
    pad_h, pad_w = (-height) % window, (-width) % window
    x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    padded_h, padded_w = height + pad_h, width + pad_w
    x = x.reshape(batch, padded_h // window, window, padded_w // window, window, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, channels), (padded_h, padded_w)


def window_unpartition(
    windows: torch.Tensor, window: int, padded_hw: tuple[int, int], grid_hw: tuple[int, int]
) -> torch.Tensor:
    """Inverse of :func:`window_partition`: back to (B, H, W, C) without the padding."""
    padded_h, padded_w = padded_hw
    channels = windows.shape[-1]
    batch = windows.shape[0] // ((padded_h // window) * (padded_w // window))
    x = windows.reshape(batch, padded_h // window, padded_w // window, window, window, channels)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(batch, padded_h, padded_w, channels)
    return x[:, : grid_hw[0], : grid_hw[1]]
