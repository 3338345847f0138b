"""The leaderboard names a backbone's ViT family (from its runs' load reports) unless it is MAE's."""

from mae_transfer.leaderboard.aggregate import Row


def test_row_label_shows_non_mae_families() -> None:
    row = Row("dinov2_b", "vit_base_patch14", "paper", "")
    assert row.label == "dinov2_b"
    row.families.update({"mae"})
    assert row.label == "dinov2_b"
    row.families.update({"dinov2_reg"})
    assert row.label == "dinov2_b (dinov2_reg)" and row.arch_label == "ViT-B"
