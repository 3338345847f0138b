"""Per-sample random masking by shuffling: counts, order, seeding, and ratio validation."""

from __future__ import annotations

import pytest
import torch

from mae_transfer.pretrain.masking import check_mask_ratio, gather_tokens, random_masking


@pytest.mark.parametrize(("num_patches", "ratio"), [(196, 0.75), (196, 0.5), (16, 0.75), (49, 0.9), (10, 0.33)])
def test_each_sample_keeps_exactly_int_l_times_one_minus_ratio_patches(num_patches: int, ratio: float) -> None:
    masking = random_masking(5, num_patches, ratio, generator=torch.Generator().manual_seed(0))
    visible = int(num_patches * (1 - ratio))
    assert masking.ids_keep.shape == (5, visible)
    assert torch.equal((masking.mask == 0).sum(1), torch.full((5,), visible))
    assert torch.equal(masking.mask.sum(1), torch.full((5,), float(num_patches - visible)))
    for row in masking.ids_keep:  # distinct patches, each sample its own draw
        assert len(set(row.tolist())) == visible
    assert len({tuple(row.tolist()) for row in masking.ids_keep}) > 1


def test_binary_mask_is_in_the_original_patch_order() -> None:
    masking = random_masking(3, 20, 0.75, generator=torch.Generator().manual_seed(1))
    for sample in range(3):
        kept = set(masking.ids_keep[sample].tolist())
        expected = torch.tensor([0.0 if index in kept else 1.0 for index in range(20)])
        assert torch.equal(masking.mask[sample], expected)


def test_ids_restore_puts_a_shuffled_sequence_back_in_order() -> None:
    masking = random_masking(2, 12, 0.0, generator=torch.Generator().manual_seed(2))
    tokens = torch.arange(12.0).view(1, 12, 1).expand(2, -1, 3)
    shuffled = gather_tokens(tokens, masking.ids_keep)  # ratio 0: ids_keep is the whole shuffle
    assert not torch.equal(shuffled, tokens)
    assert torch.equal(gather_tokens(shuffled, masking.ids_restore), tokens)


def test_a_fixed_seed_gives_the_same_mask_and_another_seed_another() -> None:
    first = random_masking(4, 196, 0.75, generator=torch.Generator().manual_seed(7))
    again = random_masking(4, 196, 0.75, generator=torch.Generator().manual_seed(7))
    other = random_masking(4, 196, 0.75, generator=torch.Generator().manual_seed(8))
    assert torch.equal(first.mask, again.mask) and torch.equal(first.ids_restore, again.ids_restore)
    assert not torch.equal(first.mask, other.mask)


@pytest.mark.parametrize(
    ("ratio", "message"),
    [(0.99, "mask_ratio=0.99 leaves no visible patch"), (0.0, "mask_ratio=0.0 masks none of the 16 patches"),
     (1.0, "mask_ratio: expected a number in [0, 1), got 1.0"), (-0.1, "got -0.1"), ("0.75", "got '0.75'")],
)
def test_bad_mask_ratios_are_refused_with_key_and_value(ratio, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        check_mask_ratio(ratio, 16)


def test_ratio_zero_is_allowed_for_the_encoder_alone() -> None:
    assert check_mask_ratio(0.0, 16, allow_unmasked=True) == 0.0
