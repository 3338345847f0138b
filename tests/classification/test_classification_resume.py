"""A real interruption: SIGKILL ``tools/train.py`` after its first checkpoint, then ``--resume``."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from classification_helpers import REPO, SMOKE_INAT

from mae_transfer.data import make_dataset

logger = logging.getLogger(__name__)
EPOCHS = 6
ITERS_PER_EPOCH = 8  # 4 classes x 16 images / batch 8


def _command(root: Path, work_dir: Path, *extra: str) -> list[str]:
    options = [f"{loader}.dataset.data_root={root}" for loader in ("train_dataloader", "val_dataloader",
                                                                   "test_dataloader")]
    options += [f"train_cfg.max_epochs={EPOCHS}", f"param_scheduler.1.end={EPOCHS}", "randomness.seed=7"]
    return [sys.executable, str(REPO / "tools" / "train.py"), str(SMOKE_INAT), "--work-dir", str(work_dir),
            *extra, "--cfg-options", *options]


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    return env


def _logged_losses(work_dir: Path) -> list[dict[int, float]]:
    """Training loss by iteration logged by each run in ``work_dir`` (one dict per run, in run order)."""
    runs = []
    for scalars in sorted(work_dir.glob("*/vis_data/scalars.json")):
        records = [json.loads(line) for line in scalars.read_text().splitlines() if line.strip()]
        runs.append({record["iter"]: record["loss"] for record in records if "loss" in record})
    return runs


@pytest.mark.slow
def test_sigkill_then_resume_continues_from_the_checkpoint(tmp_path: Path) -> None:
    root = make_dataset("inat2017", tmp_path / "data", seed=0, train_per_class=16, val_per_class=4)

    reference_dir = tmp_path / "uninterrupted"
    subprocess.run(_command(root, reference_dir), env=_env(), cwd=REPO, check=True, capture_output=True, timeout=300)
    reference = json.loads((reference_dir / "metrics.json").read_text())

    work_dir = tmp_path / "interrupted"
    process = subprocess.Popen(_command(root, work_dir), env=_env(), cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pointer = work_dir / "last_checkpoint"  # mmengine writes it after a checkpoint is complete
    deadline = time.monotonic() + 240
    while not pointer.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL, "the run ended before it could be interrupted"
    saved = Path(pointer.read_text().strip())
    saved_epoch = int(saved.stem.split("_")[1])
    assert saved_epoch < EPOCHS and not (work_dir / f"epoch_{EPOCHS}.pth").exists()
    assert not (work_dir / "metrics.json").exists()

    resumed = subprocess.run(_command(root, work_dir, "--resume"), env=_env(), cwd=REPO, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    first_run, second_run = _logged_losses(work_dir)
    assert min(first_run) == 1
    # continued after the saved iteration (not from scratch) and ran to the end of the schedule
    assert min(second_run) == saved_epoch * ITERS_PER_EPOCH + 1
    assert max(second_run) == EPOCHS * ITERS_PER_EPOCH
    assert (work_dir / f"epoch_{EPOCHS}.pth").exists()
    result = json.loads((work_dir / "metrics.json").read_text())
    assert result["iteration"] == reference["iteration"] == EPOCHS * ITERS_PER_EPOCH
    (reference_losses,) = _logged_losses(reference_dir)
    last = EPOCHS * ITERS_PER_EPOCH
    logger.warning(
        "resumed from epoch %d: top-1 %.2f vs %.2f uninterrupted (%s); final loss %.4f vs %.4f (%s)",
        saved_epoch, result["metrics"]["accuracy/top1"], reference["metrics"]["accuracy/top1"],
        "same" if result["metrics"] == reference["metrics"] else "different",
        second_run[last], reference_losses[last],
        "same" if second_run[last] == reference_losses[last] else "different",
    )
