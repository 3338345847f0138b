"""Pre-training on the real launch paths: SIGKILL then ``--resume``, and 2-process DDP through torchrun."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pretrain_helpers import REPO, SMOKE_PRETRAIN
from training_helpers import kill_after_first_checkpoint, run, subprocess_env, train_command

from mae_transfer.data import make_dataset
from mae_transfer.pretrain import pretrain_checkpoint_path

pytestmark = pytest.mark.slow
EPOCHS = 6


def _options(root: Path, **extra) -> dict[str, object]:
    return {"train_dataloader.dataset.data_root": root, "val_dataloader.dataset.data_root": root,
            "train_cfg.max_epochs": EPOCHS, "param_scheduler.0.end": 1, "param_scheduler.1.begin": 1,
            "param_scheduler.1.end": EPOCHS, "train_cfg.val_interval": EPOCHS, "custom_hooks.0.save_epochs": "[3]",
            **extra}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _logged_iterations(work_dir: Path) -> list[list[int]]:
    runs = []
    for scalars in sorted(work_dir.glob("*/vis_data/scalars.json")):
        records = [json.loads(line) for line in scalars.read_text().splitlines() if line.strip()]
        runs.append(sorted(record["iter"] for record in records if "loss" in record))
    return runs


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory) -> Path:
    return make_dataset("imagenet", tmp_path_factory.mktemp("imagenet") / "imagenet", seed=0)


def test_sigkill_during_pretraining_then_resume_finishes_the_schedule(imagenet: Path, tmp_path: Path) -> None:
    work_dir = tmp_path / "run"
    options = _options(imagenet, **{"default_hooks.checkpoint.interval": 1, "default_hooks.logger.interval": 1})
    code = kill_after_first_checkpoint(train_command(SMOKE_PRETRAIN, work_dir, options), work_dir, timeout=300)
    assert code == -signal.SIGKILL
    saved_epoch = int(Path((work_dir / "last_checkpoint").read_text().strip()).stem.split("_")[1])
    assert saved_epoch < EPOCHS and not pretrain_checkpoint_path(work_dir, EPOCHS).exists()

    run(train_command(SMOKE_PRETRAIN, work_dir, options, "--resume"), timeout=300)
    first, second = _logged_iterations(work_dir)
    iterations_per_epoch = 4  # 64 images / batch 16
    assert first[0] == 1 and second[0] == saved_epoch * iterations_per_epoch + 1  # continued, not restarted
    assert second[-1] == EPOCHS * iterations_per_epoch
    final = torch.load(pretrain_checkpoint_path(work_dir, EPOCHS), map_location="cpu", weights_only=True)
    assert final["epoch"] == EPOCHS - 1 and pretrain_checkpoint_path(work_dir, 3).exists()


def test_two_process_ddp_pretraining_through_torchrun(imagenet: Path, tmp_path: Path) -> None:
    work_dir = tmp_path / "ddp"
    # CPU DDP: mmengine passes device_ids=[LOCAL_RANK] unless the wrapper config says otherwise
    options = _options(imagenet, **{"model_wrapper_cfg.device_ids": None, "env_cfg.dist_cfg.backend": "gloo"})
    # DDP without find_unused_parameters fails at the second step if any trainable parameter goes unused
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
               "--master-port", str(_free_port()),
               *train_command(SMOKE_PRETRAIN, work_dir, options, "--launcher", "pytorch")[1:]]
    result = subprocess.run(command, cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    final = torch.load(pretrain_checkpoint_path(work_dir, EPOCHS), map_location="cpu", weights_only=True)
    assert final["args"]["world_size"] == 2 and final["epoch"] == EPOCHS - 1
    (iterations,) = _logged_iterations(work_dir)
    assert iterations[-1] == EPOCHS * 2  # 64 images / (16 per process x 2 processes) per epoch
