"""The MAE reconstruction loss (MAE paper §3 "Reconstruction target"; official ``forward_loss``).

Mean squared error per patch over its p*p*C values, averaged over the removed patches only.
With ``norm_pix_loss`` the target patch is first normalised by its own mean and
(unbiased variance + 1e-6) ** 0.5.
"""

from __future__ import annotations

import torch

from mae_transfer.pretrain.patches import normalize_patches


def reconstruction_target(patches: torch.Tensor, norm_pix_loss: bool) -> torch.Tensor:
    """The regression target for (N, L, p*p*C) pixel patches (float32)."""
    patches = patches.float()
    return normalize_patches(patches) if norm_pix_loss else patches


def per_patch_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(N, L, D) prediction and target -> (N, L) mean squared error of each patch, in float32."""
    return (pred.float() - target.float()).pow(2).mean(dim=-1)


def masked_patch_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-patch MSE averaged over the patches where ``mask`` is 1 (the removed ones).

    Raises:
        ValueError: when the mask removes no patch (the average would be 0 / 0).
    """
    removed = mask.sum()
    if not bool(removed > 0):
        raise ValueError("the mask removes no patch; the MAE loss is averaged over removed patches")
    return (per_patch_loss(pred, target) * mask).sum() / removed
