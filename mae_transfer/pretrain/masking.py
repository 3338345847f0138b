"""Per-sample random masking by shuffling (MAE paper §3; official ``models_mae.random_masking``).

For each sample, noise ~ U[0, 1) over the L patches is sorted ascending; the patches with the
smallest noise are kept (the first ``int(L * (1 - mask_ratio))`` of the shuffle),
``ids_restore`` (the argsort of the shuffle) puts a shuffled sequence back in patch order, and
the binary mask (0 keep, 1 removed) is returned in the original patch order.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class RandomMask:
    """One batch's masks.

    Attributes:
        ids_keep: (N, K) indices of the visible patches, in shuffle order.
        ids_restore: (N, L) position of each patch in the shuffled sequence.
        mask: (N, L) float, 0 for visible and 1 for removed patches, in patch order.
    """

    ids_keep: torch.Tensor
    ids_restore: torch.Tensor
    mask: torch.Tensor

    @property
    def num_visible(self) -> int:
        """K, the visible patches per sample."""
        return self.ids_keep.shape[1]


def num_visible(num_patches: int, mask_ratio: float) -> int:
    """``int(L * (1 - mask_ratio))``, the official count of visible patches."""
    return int(num_patches * (1 - mask_ratio))


def check_mask_ratio(mask_ratio: float, num_patches: int, *, allow_unmasked: bool = False) -> float:
    """Validate a mask ratio for ``num_patches`` patches; returns it as a float.

    Args:
        mask_ratio: fraction of patches to remove.
        num_patches: L, the patches per image.
        allow_unmasked: accept a ratio that removes no patch (encoder-only use; the
            pre-training loss is averaged over removed patches and needs at least one).

    Raises:
        ValueError: naming ``mask_ratio`` and its value, when it is not a number in [0, 1),
            leaves no visible patch, or (unless allowed) masks none.
    """
    if isinstance(mask_ratio, bool) or not isinstance(mask_ratio, (int, float)):
        raise ValueError(f"mask_ratio: expected a number in [0, 1), got {mask_ratio!r}")
    ratio = float(mask_ratio)
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"mask_ratio: expected a number in [0, 1), got {ratio}")
    visible = num_visible(num_patches, ratio)
    if visible < 1:
        raise ValueError(
            f"mask_ratio={ratio} leaves no visible patch: int({num_patches} x (1 - {ratio})) = {visible}; "
            "the encoder needs at least one"
        )
    if visible == num_patches and not allow_unmasked:
        raise ValueError(
            f"mask_ratio={ratio} masks none of the {num_patches} patches: int({num_patches} x (1 - {ratio})) = "
            f"{visible}; the loss is averaged over removed patches and needs at least one"
        )
    return ratio


def random_masking(
    batch: int,
    num_patches: int,
    mask_ratio: float,
    *,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> RandomMask:
    """Draw one random mask per sample (noise from ``generator`` if given, for a fixed mask).

    The noise is drawn on the generator's device and moved to ``device``.
    """
    keep = num_visible(num_patches, mask_ratio)
    noise_device = generator.device if generator is not None else device
    noise = torch.rand(batch, num_patches, device=noise_device, generator=generator).to(device)
    ids_shuffle = torch.argsort(noise, dim=1)  # ascending: small noise is kept
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    mask = torch.ones(batch, num_patches, device=noise.device)
    mask[:, :keep] = 0
    mask = torch.gather(mask, dim=1, index=ids_restore)
    return RandomMask(ids_keep=ids_shuffle[:, :keep], ids_restore=ids_restore, mask=mask)


def gather_tokens(tokens: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """(N, L, D) tokens at the (N, K) indices ``ids`` -> (N, K, D)."""
    return torch.gather(tokens, dim=1, index=ids.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
