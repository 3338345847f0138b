"""A CPU smoke training run through the real Runner, interrupted by SIGKILL and resumed.

One run serves three checks (training twice would not fit the CPU budget):
- interrupt + ``--resume``: tools/train.py is SIGKILLed once its first checkpoint is recorded;
  ``--resume`` continues from that iteration (not from 0) and finishes the schedule;
- learning: mIoU on the synthetic val set after training >= 50 and >= 3x the untrained
  model's (the same seeded init, measured through the same Runner and IoUMetric);
- metrics.json: the final metrics are mmseg IoUMetric's numbers (already percent), unscaled.
"""

from __future__ import annotations

import json
import re
import signal
from dataclasses import dataclass
from pathlib import Path

import pytest
from segmentation_helpers import SMOKE_CONFIG, data_root_options, run, train_command
from training_helpers import kill_after_first_checkpoint

pytestmark = pytest.mark.slow

MAX_ITERS, INTERVAL = 80, 40  # the smoke config's schedule and checkpoint interval


@dataclass
class ResumedRun:
    work_dir: Path
    options: dict[str, object]
    saved_iter: int
    kill_returncode: int
    resume_log: str


@pytest.fixture(scope="module")
def resumed_run(synthetic_ade20k: Path, tmp_path_factory: pytest.TempPathFactory) -> ResumedRun:
    work_dir = tmp_path_factory.mktemp("smoke_ade20k")
    options = {
        **data_root_options(synthetic_ade20k),
        "default_hooks.checkpoint.interval": INTERVAL,
        "default_hooks.checkpoint.max_keep_ckpts": -1,
    }
    returncode = kill_after_first_checkpoint(train_command(work_dir, options), work_dir, timeout=300)
    saved = Path((work_dir / "last_checkpoint").read_text().strip())
    saved_iter = int(re.search(r"iter_(\d+)\.pth", saved.name).group(1))
    assert not (work_dir / "metrics.json").exists()
    result = run(train_command(work_dir, options, "--resume"), timeout=400)
    return ResumedRun(work_dir, options, saved_iter, returncode, result.stdout + result.stderr)


def _val_metrics(options: dict[str, object], work_dir: Path, checkpoint: Path | None) -> dict[str, float]:
    """IoUMetric on the val set through a Runner: the seeded init (no checkpoint) or a checkpoint."""
    import torch
    from mmengine.config import Config
    from mmengine.runner import Runner

    cfg = Config.fromfile(str(SMOKE_CONFIG))
    cfg.merge_from_dict(options)
    cfg.work_dir = str(work_dir)
    cfg.load_from = str(checkpoint) if checkpoint else None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runner = Runner.from_cfg(cfg)
        if checkpoint is None:
            runner.model.init_weights()  # what runner.train() does before step 0
        return runner.val()
    finally:
        torch.set_num_threads(threads)


def test_sigkill_then_resume_continues_and_finishes(resumed_run: ResumedRun) -> None:
    assert resumed_run.kill_returncode == -signal.SIGKILL
    assert INTERVAL <= resumed_run.saved_iter < MAX_ITERS
    log = resumed_run.resume_log
    assert f"resumed epoch: 0, iter: {resumed_run.saved_iter}" in log, log[-3000:]
    logged = [int(i) for i in re.findall(rf"Iter\(train\) \[\s*(\d+)/{MAX_ITERS}\]", log)]
    assert logged and min(logged) > resumed_run.saved_iter and max(logged) == MAX_ITERS, logged
    assert (resumed_run.work_dir / f"iter_{MAX_ITERS}.pth").is_file()
    assert json.loads((resumed_run.work_dir / "metrics.json").read_text())["iteration"] == MAX_ITERS


def test_training_learns_the_synthetic_scenes(resumed_run: ResumedRun, tmp_path: Path) -> None:
    trained = json.loads((resumed_run.work_dir / "metrics.json").read_text())["metrics"]
    untrained = _val_metrics(resumed_run.options, tmp_path, checkpoint=None)
    print(f"synthetic ADE20K val mIoU: untrained {untrained['mIoU']:.2f}, trained {trained['mIoU']:.2f} "
          f"(mAcc {trained['mAcc']:.2f}, aAcc {trained['aAcc']:.2f})")
    assert trained["mIoU"] >= 50.0
    assert trained["mIoU"] >= 3 * untrained["mIoU"]


def test_metrics_file_holds_iou_metric_values(resumed_run: ResumedRun, tmp_path: Path) -> None:
    payload = json.loads((resumed_run.work_dir / "metrics.json").read_text())
    recomputed = _val_metrics(resumed_run.options, tmp_path, resumed_run.work_dir / f"iter_{MAX_ITERS}.pth")
    for key in ("aAcc", "mIoU", "mAcc"):
        assert payload["metrics"][key] == pytest.approx(float(recomputed[key]), abs=1e-9), key
        assert payload["raw"][key] == payload["metrics"][key], "IoUMetric already logs percent"
    assert 1.0 < payload["metrics"]["aAcc"] <= 100.0
