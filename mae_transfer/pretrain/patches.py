"""Images <-> per-patch pixel vectors, in the order of the official MAE ``models_mae.py``.

``patchify`` maps (N, C, H, W) to (N, L, p*p*C) as ``n c (h p) (w q) -> n (h w) (p q c)``:
patches in row-major order of the grid, each patch's pixels row-major with the channels
innermost. ``unpatchify`` is its inverse. ``normalize_patches`` is the per-patch target
normalisation of ``norm_pix_loss`` (mean and unbiased variance over a patch's p*p*C values).
"""

from __future__ import annotations

import torch

NORM_PIX_EPS = 1e-6  # official models_mae.py forward_loss: (var + 1.e-6) ** .5


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, L, p*p*C), L = (H/p) * (W/p); H and W must be multiples of p."""
    batch, channels, height, width = images.shape
    if height % patch_size or width % patch_size:
        raise ValueError(f"image size {height}x{width} is not divisible by the patch size {patch_size}")
    grid_h, grid_w = height // patch_size, width // patch_size
    x = images.reshape(batch, channels, grid_h, patch_size, grid_w, patch_size)
    x = torch.einsum("nchpwq->nhwpqc", x)
    return x.reshape(batch, grid_h * grid_w, patch_size * patch_size * channels)


def unpatchify(patches: torch.Tensor, patch_size: int, grid_hw: tuple[int, int], channels: int = 3) -> torch.Tensor:
    """(N, L, p*p*C) -> (N, C, H, W), the inverse of :func:`patchify` for the grid ``grid_hw``."""
    batch, length, dim = patches.shape
    grid_h, grid_w = grid_hw
    if length != grid_h * grid_w or dim != patch_size * patch_size * channels:
        raise ValueError(
            f"patches of shape {tuple(patches.shape)} do not fit a {grid_h}x{grid_w} grid of "
            f"{patch_size}x{patch_size}x{channels} patches"
        )
    x = patches.reshape(batch, grid_h, grid_w, patch_size, patch_size, channels)
    x = torch.einsum("nhwpqc->nchpwq", x)
    return x.reshape(batch, channels, grid_h * patch_size, grid_w * patch_size)


def patch_statistics(patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-patch mean and unbiased variance over the last dimension, each (N, L, 1)."""
    return patches.mean(dim=-1, keepdim=True), patches.var(dim=-1, keepdim=True)


def normalize_patches(patches: torch.Tensor) -> torch.Tensor:
    """The norm-pix target: each patch minus its mean, over (its unbiased variance + 1e-6) ** 0.5."""
    mean, var = patch_statistics(patches)
    return (patches - mean) / (var + NORM_PIX_EPS) ** 0.5


def denormalize_patches(normalized: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Undo :func:`normalize_patches` with the statistics of ``reference`` (the true patches).

    Used to show norm-pix predictions as pixels, as the official visualisation does: each
    predicted patch takes the mean and variance of the original patch at its position.
    """
    mean, var = patch_statistics(reference)
    return normalized * (var + NORM_PIX_EPS) ** 0.5 + mean
