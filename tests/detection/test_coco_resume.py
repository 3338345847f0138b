"""A real interruption: SIGKILL tools/train.py after its first checkpoint, then ``--resume``.

The resumed run must load the checkpoint with torch's default ``weights_only=True`` (torch
2.14; the allow-list lives in mae_transfer.integrations.engine), continue from the saved
iteration rather than from 0, and finish the schedule.
"""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import pytest
from detection_helpers import data_root_options, run, train_command
from training_helpers import kill_after_first_checkpoint

pytestmark = pytest.mark.slow

MAX_ITERS, INTERVAL = 24, 8


def _options(root: Path) -> dict[str, object]:
    return {
        **data_root_options(root),
        "train_cfg.max_iters": MAX_ITERS,
        "train_cfg.val_interval": MAX_ITERS,
        "default_hooks.checkpoint.interval": INTERVAL,
        "default_hooks.checkpoint.max_keep_ckpts": -1,
        "default_hooks.logger.interval": 4,
        "val_dataloader.dataset.indices": 4,
    }


def test_sigkill_then_resume_continues_and_finishes(synthetic_coco: Path, tmp_path: Path) -> None:
    options = _options(synthetic_coco)
    returncode = kill_after_first_checkpoint(train_command(tmp_path, options), tmp_path, timeout=300)
    assert returncode == -signal.SIGKILL
    saved = Path((tmp_path / "last_checkpoint").read_text().strip())
    saved_iter = int(re.search(r"iter_(\d+)\.pth", saved.name).group(1))
    assert INTERVAL <= saved_iter < MAX_ITERS
    assert not (tmp_path / "metrics.json").exists()

    result = run(train_command(tmp_path, options, "--resume"), timeout=300)
    log = result.stdout + result.stderr
    assert f"resumed epoch: 0, iter: {saved_iter}" in log, log[-3000:]
    logged_iters = [int(i) for i in re.findall(rf"Iter\(train\) \[\s*(\d+)/{MAX_ITERS}\]", log)]
    assert logged_iters and min(logged_iters) > saved_iter, logged_iters
    assert (tmp_path / f"iter_{MAX_ITERS}.pth").is_file()
    payload = json.loads((tmp_path / "metrics.json").read_text())
    assert payload["iteration"] == MAX_ITERS
    assert "coco/bbox_mAP_50" in payload["metrics"]
