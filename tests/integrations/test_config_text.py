"""`mae_transfer.integrations.config_text`: Config.pretty_text memoized, the text unchanged."""

from __future__ import annotations

from pathlib import Path

import mmengine.config.config as config_module
from mmengine.config import Config

from mae_transfer.integrations.config_text import install

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke" / "inat_finetune.py"


def test_pretty_text_is_yapfs_text_formatted_once_per_distinct_config() -> None:
    install()
    install()  # idempotent: one memo, not a memo of a memo
    memo = config_module.FormatCode
    assert memo.memoized_by_mae_transfer and not getattr(memo.__wrapped__, "memoized_by_mae_transfer", False)
    cfg = Config.fromfile(str(SMOKE))
    cfg.train_cfg.max_epochs = 7919  # a text no other test formats
    before = memo.cache_info()
    first = cfg.pretty_text
    # the text mmengine's own call gives (yapf, unmemoized), character for character
    config_module.FormatCode = memo.__wrapped__
    try:
        assert cfg.pretty_text == first
    finally:
        config_module.FormatCode = memo
    assert "max_epochs=7919" in first
    assert cfg.pretty_text == first and Config.fromstring(first, ".py").train_cfg.max_epochs == 7919
    after = memo.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 1)
    cfg.train_cfg.max_epochs = 7920  # a changed config is formatted anew
    assert "max_epochs=7920" in cfg.pretty_text and memo.cache_info().misses == after.misses + 1


def test_a_rank_above_0_gets_the_same_config_unwrapped(monkeypatch) -> None:
    install()
    cfg = Config.fromfile(str(SMOKE))
    cfg.train_cfg.max_epochs = 7921
    formatted = cfg.pretty_text
    monkeypatch.setenv("RANK", "1")
    misses = config_module.FormatCode.cache_info().misses
    unwrapped = cfg.pretty_text
    assert config_module.FormatCode.cache_info().misses == misses  # yapf not called
    assert unwrapped != formatted and Config.fromstring(unwrapped, ".py").to_dict() == Config.fromstring(
        formatted, ".py").to_dict()
