"""Feature-pyramid adapters that turn single-scale ViT maps (stride p) into a multi-scale pyramid.

- :class:`MultiLevelRescale`: the MAE paper's adapter (A.3 for COCO, A.4 for ADE20K). Maps
  tapped at several blocks are resampled to strides 4, 8, 16, 32 (for p = 16): deconvolution
  x4 (deconv, norm, GELU, deconv), deconvolution x2, identity, max pool; an FPN or UperNet head
  consumes the result.
- :class:`SimpleFeaturePyramid`: ViTDet's pyramid (Li et al. 2022) from the last map only:
  x4 / x2 / x1 / x0.5, each followed by a 1x1 and a 3x3 convolution with LayerNorm, plus a top
  level by stride-2 max pooling.
"""

from __future__ import annotations

from typing import Sequence

import torch
from timm.layers import LayerNorm2d
from torch import nn


# The adapters' one norm vocabulary: name -> layer. Configs may also use the OpenMMLab
# ``norm_cfg`` type of the same layer (NORM_ALIASES); ``norm_name`` translates.
NORMS = ("bn", "syncbn", "ln", "gn", "none")
NORM_ALIASES = {
    "BN": "bn", "BN2d": "bn", "SyncBN": "syncbn", "GN": "gn", "LN2d": "ln",
    "MAETransferLayerNorm2d": "ln",  # integrations.mmdet's registered channel LayerNorm
}


def norm_name(kind: str) -> str:
    """The ``NORMS`` name of ``kind`` (a ``NORMS`` name or a ``NORM_ALIASES`` type), or ValueError."""
    name = NORM_ALIASES.get(kind, kind)
    if name not in NORMS:
        raise ValueError(f"unknown norm {kind!r}; expected one of {', '.join(NORMS)} "
                         f"(or the OpenMMLab type {', '.join(NORM_ALIASES)})")
    return name


def make_norm(kind: str, channels: int) -> nn.Module:
    """A 2-D normalisation layer: ``bn``, ``syncbn``, ``ln`` (channel LayerNorm), ``gn`` or ``none``
    (or its ``NORM_ALIASES`` type)."""
    name = norm_name(kind)
    if name == "bn":
        return nn.BatchNorm2d(channels)
    if name == "syncbn":
        return nn.SyncBatchNorm(channels)
    if name == "ln":
        return LayerNorm2d(channels, eps=1e-6)
    if name == "gn":
        return nn.GroupNorm(32 if channels % 32 == 0 else 1, channels)
    return nn.Identity()


def _rescale(scale: float, in_channels: int, out_channels: int, norm: str) -> nn.Module:
    """One resampling branch keeping or changing the channel count (ViTDet halves per x2)."""
    if scale == 4:
        middle = in_channels // 2 if out_channels < in_channels else in_channels
        return nn.Sequential(
            nn.ConvTranspose2d(in_channels, middle, kernel_size=2, stride=2),
            make_norm(norm, middle),
            nn.GELU(),
            nn.ConvTranspose2d(middle, out_channels, kernel_size=2, stride=2),
        )
    if scale == 2:
        return nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
    if scale == 1:
        return nn.Identity()
    if scale == 0.5:
        return nn.MaxPool2d(kernel_size=2, stride=2)
    raise ValueError(f"unsupported rescale factor {scale}; expected one of 4, 2, 1, 0.5")


class MultiLevelRescale(nn.Module):
    """Resample one map per level by its own factor (MAE paper A.3 / A.4 adapter).

    Args:
        embed_dim: channels of the input maps (kept).
        scales: one factor per input map, from {4, 2, 1, 0.5}; default strides 4-32 from 16.
        norm: normalisation inside the x4 branch (``bn`` in MMSegmentation's MAE recipe).
    """

    def __init__(self, embed_dim: int, scales: Sequence[float] = (4, 2, 1, 0.5), norm: str = "bn") -> None:
        super().__init__()
        self.scales = tuple(scales)
        self.branches = nn.ModuleList(_rescale(scale, embed_dim, embed_dim, norm) for scale in self.scales)

    def forward(self, maps: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        if len(maps) != len(self.branches):
            raise ValueError(f"expected {len(self.branches)} maps (one per scale), got {len(maps)}")
        # contiguous: see SimpleFeaturePyramid.forward (mmcv's RoIAlign ignores strides)
        return tuple(branch(feature).contiguous() for branch, feature in zip(self.branches, maps))


class SimpleFeaturePyramid(nn.Module):
    """ViTDet's simple feature pyramid from a single stride-16 map.

    Args:
        embed_dim: channels of the input map.
        out_channels: channels of every pyramid level (256 in ViTDet).
        scales: rescale factors, from {4, 2, 1, 0.5}; x4 keeps dim/4 channels and x2 dim/2.
        norm: normalisation after each convolution (``ln`` in ViTDet).
        top_block: add a last level by stride-2 max pooling of the coarsest one (ViTDet's p6).
    """

    def __init__(
        self,
        embed_dim: int,
        out_channels: int = 256,
        scales: Sequence[float] = (4, 2, 1, 0.5),
        norm: str = "ln",
        top_block: bool = True,
    ) -> None:
        super().__init__()
        self.scales = tuple(scales)
        self.top_block = top_block
        branch_dims = {4: embed_dim // 4, 2: embed_dim // 2, 1: embed_dim, 0.5: embed_dim}
        self.stages = nn.ModuleList()
        for scale in self.scales:
            dim = branch_dims[scale]
            self.stages.append(
                nn.Sequential(
                    _rescale(scale, embed_dim, dim, norm),
                    nn.Conv2d(dim, out_channels, kernel_size=1, bias=False),
                    make_norm(norm, out_channels),
                    nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
                    make_norm(norm, out_channels),
                )
            )

    def forward(self, feature: torch.Tensor | Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """A map (or a one-element sequence of it) -> pyramid levels, finest first.

        Levels are contiguous NCHW: the channel LayerNorm leaves channels-last strides, and
        mmcv's RoIAlign kernels (CPU and, by their source, CUDA) read the input's raw memory as
        if it were contiguous: wrong RoI features otherwise.
        """
        if not isinstance(feature, torch.Tensor):
            feature = feature[-1]
        levels = [stage(feature).contiguous() for stage in self.stages]
        if self.top_block:
            levels.append(nn.functional.max_pool2d(levels[-1], kernel_size=1, stride=2))
        return tuple(levels)
