"""Resizing a patch-embedding kernel to another patch size (e.g. MAE's ViT-H/14 for ViTDet's /16).

ViTDet trains ViT-H with 16x16 patches from the 14x14 MAE checkpoint by interpolating the
patch-embedding filter. Here the (out, in, k, k) kernel is resized bicubically per channel
pair (``align_corners=False``, no antialiasing), in float32, keeping the input dtype. The
kernel keeps its per-pixel weights, so a patch's response to a uniform input grows with its
area ((16/14)^2 for 14 -> 16), a scale that fine-tuning has to absorb.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def resize_patch_kernel(weight: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a (C_out, C_in, kh, kw) convolution kernel to (C_out, C_in, *size).

    Returns the input itself when it already has that size.
    """
    if weight.dim() != 4:
        raise ValueError(f"a patch-embedding kernel is 4-D (out, in, kh, kw), got shape {tuple(weight.shape)}")
    size = (int(size[0]), int(size[1]))
    if tuple(weight.shape[-2:]) == size:
        return weight
    if min(size) < 1:
        raise ValueError(f"patch kernel size must be positive, got {size}")
    out_channels, in_channels = weight.shape[:2]
    flat = weight.float().reshape(out_channels * in_channels, 1, *weight.shape[-2:])
    resized = F.interpolate(flat, size=size, mode="bicubic", align_corners=False)
    return resized.reshape(out_channels, in_channels, *size).to(weight.dtype)
