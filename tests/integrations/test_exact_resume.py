"""Exact resumption (issue 12): a run SIGKILLed after a checkpoint and resumed ends with the same
weights, bit for bit, and the same metrics as the uninterrupted run with the same seed (CPU,
deterministic mode), through the whole classification recipe (RandAugment, random erasing,
Mixup/CutMix, drop path) and an iteration-based segmentation run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mae_transfer.checkpoints.reader import read_training_checkpoint
from mae_transfer.data import make_dataset
from mae_transfer.integrations.resume_state import (
    CHECKPOINT_KEY,
    DataRandomStreams,
    capture_random_state,
    restore_random_state,
)

from engine_helpers import regression_runner

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from training_helpers import kill_after_first_checkpoint, run, train_command  # noqa: E402

SMOKE_INAT = REPO / "configs" / "smoke" / "inat_finetune.py"
SMOKE_ADE = REPO / "configs" / "smoke" / "ade20k_upernet.py"


def test_random_state_round_trips_through_a_weights_only_checkpoint(tmp_path: Path) -> None:
    import random

    import numpy as np

    random.random(), np.random.rand(), torch.rand(1), np.random.randn()  # a cached gaussian too
    path = tmp_path / "state.pth"
    torch.save({"state": capture_random_state()}, path)
    expected = (random.random(), np.random.rand(), np.random.randn(), torch.rand(3))
    restore_random_state(torch.load(path, weights_only=True)["state"])
    again = (random.random(), np.random.rand(), np.random.randn(), torch.rand(3))
    assert expected[:3] == again[:3] and torch.equal(expected[3], again[3])


def test_data_streams_leave_the_caller_streams_alone_and_depend_on_the_epoch() -> None:
    streams = DataRandomStreams(seed=3, rank=0)
    torch.manual_seed(0)
    expected_outer = torch.rand(2)
    torch.manual_seed(0)
    with streams.active():
        first = torch.rand(2)
    with streams.active():
        second = torch.rand(2)
    assert torch.equal(torch.rand(2), expected_outer)  # the caller's stream did not move
    assert not torch.equal(first, second)  # carried from sample to sample
    again = DataRandomStreams(seed=3, rank=0)
    with again.active():
        assert torch.equal(torch.rand(2), first)  # a fresh process (or a resumed run) draws the same
    again.epoch.fill_(1)
    with again.active():
        assert not torch.equal(torch.rand(2), first)  # a new epoch, new draws


def test_checkpoints_carry_the_random_state(tmp_path: Path) -> None:
    regression_runner(tmp_path, max_iters=3).train()
    checkpoint = read_training_checkpoint(tmp_path / "iter_3.pth")
    assert set(checkpoint[CHECKPOINT_KEY]) == {"python", "numpy", "torch", "cuda"}


def _final_state(work_dir: Path) -> dict[str, torch.Tensor]:
    pointer = Path((work_dir / "last_checkpoint").read_text().strip())
    return read_training_checkpoint(pointer)["state_dict"]


def _assert_same_run(reference_dir: Path, resumed_dir: Path) -> None:
    reference, resumed = _final_state(reference_dir), _final_state(resumed_dir)
    assert reference.keys() == resumed.keys()
    different = [key for key in reference if not torch.equal(reference[key], resumed[key])]
    assert not different, f"{len(different)} of {len(reference)} tensors differ, first {different[:3]}"
    expected = json.loads((reference_dir / "metrics.json").read_text())
    got = json.loads((resumed_dir / "metrics.json").read_text())
    assert got["metrics"] == expected["metrics"] and got["iteration"] == expected["iteration"]


def _interrupted_then_resumed(command: list[str], work_dir: Path) -> int:
    """Kill ``command`` after its first checkpoint, resume it; returns the iteration resumed from."""
    assert kill_after_first_checkpoint(command, work_dir, timeout=240) == -9
    saved = read_training_checkpoint(Path((work_dir / "last_checkpoint").read_text().strip()))
    assert not (work_dir / "metrics.json").exists()
    resume = command[:command.index("--cfg-options")] + ["--resume"] + command[command.index("--cfg-options"):]
    run(resume, timeout=400)
    return saved["meta"]["iter"]


CLASSIFICATION = {"train_cfg.max_epochs": 3, "train_cfg.val_interval": 1, "param_scheduler.1.end": 3,
                  "randomness.seed": 7, "randomness.deterministic": True}


@pytest.mark.slow
@pytest.mark.parametrize("checkpoints", ["every_epoch", "every_3_iterations"])
def test_classification_resume_is_exact(tmp_path: Path, checkpoints: str) -> None:
    root = make_dataset("inat2017", tmp_path / "data", seed=0, train_per_class=16, val_per_class=4)
    options = dict(CLASSIFICATION, **{f"{loader}.dataset.data_root": root for loader in (
        "train_dataloader", "val_dataloader", "test_dataloader")})
    if checkpoints == "every_3_iterations":  # checkpoints inside an epoch of the epoch-based loop
        options.update({"default_hooks.checkpoint.by_epoch": False, "default_hooks.checkpoint.interval": 3})
    run(train_command(SMOKE_INAT, tmp_path / "straight", options), timeout=400)
    resumed_at = _interrupted_then_resumed(train_command(SMOKE_INAT, tmp_path / "resumed", options),
                                           tmp_path / "resumed")
    assert 0 < resumed_at < 24 and (resumed_at % 8 != 0) == (checkpoints == "every_3_iterations")
    _assert_same_run(tmp_path / "straight", tmp_path / "resumed")


@pytest.mark.slow
def test_iteration_based_segmentation_resume_is_exact(tmp_path: Path) -> None:
    root = make_dataset("ade20k", tmp_path / "data", seed=0, num_train=8, num_val=2)
    options = {"train_dataloader.dataset.data_root": root, "val_dataloader.dataset.data_root": root,
               "test_dataloader.dataset.data_root": root, "train_cfg.max_iters": 12, "train_cfg.val_interval": 6,
               "param_scheduler.1.end": 12, "default_hooks.checkpoint.interval": 5, "randomness.seed": 7,
               "randomness.deterministic": True}
    run(train_command(SMOKE_ADE, tmp_path / "straight", options), timeout=400)
    resumed_at = _interrupted_then_resumed(train_command(SMOKE_ADE, tmp_path / "resumed", options),
                                           tmp_path / "resumed")
    assert resumed_at in (5, 10)
    _assert_same_run(tmp_path / "straight", tmp_path / "resumed")
