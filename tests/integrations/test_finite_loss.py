"""A non-finite loss stops training at once, naming the iteration and every loss term
(issue 12 item 1: a NaN weight used to train to a "done" cell at chance accuracy)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mae_transfer.data import make_dataset
from mae_transfer.integrations.finite_loss import NonFiniteLossError, non_finite_loss_message

from engine_helpers import regression_runner

REPO = Path(__file__).resolve().parents[2]
SMOKE_INAT = REPO / "configs" / "smoke" / "inat_finetune.py"


def test_message_names_iteration_epoch_and_every_term() -> None:
    outputs = {"loss": torch.tensor(float("nan")), "loss_cls": torch.tensor(float("nan")),
               "loss_bbox": torch.tensor(0.25), "acc": torch.tensor(50.0)}
    message = non_finite_loss_message(outputs, iteration=7, epoch=2)
    assert message.startswith("non-finite loss at iteration 7 (epoch 2): loss, loss_cls not finite")
    assert "loss terms: loss=nan, loss_cls=nan, loss_bbox=0.25, acc=50" in message


def test_finite_terms_and_non_loss_terms_pass() -> None:
    assert non_finite_loss_message({"loss": torch.tensor(1.5), "loss_x": 0.5}, 1, None) is None
    assert non_finite_loss_message({"loss": torch.tensor(1.5), "acc": float("nan")}, 1, None) is None
    assert "loss_x=inf" in non_finite_loss_message({"loss": 1.0, "loss_x": math.inf}, 3, None)


def test_in_process_runner_stops_at_the_bad_iteration(tmp_path: Path) -> None:
    from mmengine.hooks import Hook

    class Poison(Hook):
        def before_train_iter(self, runner, batch_idx, data_batch=None):
            if runner.iter == 4:
                with torch.no_grad():
                    runner.model.linear.weight.fill_(float("inf"))

    runner = regression_runner(tmp_path, max_iters=9, custom_hooks=[Poison()])
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss at iteration 5: loss not finite"):
        runner.train()
    assert runner.iter == 4
    assert (tmp_path / "iter_3.pth").exists() and not (tmp_path / "iter_6.pth").exists()


@pytest.mark.slow
def test_classification_smoke_run_with_a_nan_weight_stops_at_step_1(tmp_path: Path) -> None:
    root = make_dataset("inat2017", tmp_path / "data", train_per_class=4, val_per_class=2)
    config = tmp_path / "nan_weight.py"
    config.write_text(f"_base_ = [{str(SMOKE_INAT)!r}]\n"
                      "custom_imports = dict(imports=['mae_transfer.integrations.classification', "
                      "'nan_weight_hook'], allow_failed_imports=False)\n"
                      "custom_hooks = [dict(type='MAETransferTestNaNWeightHook')]\n")
    work_dir = tmp_path / "work"
    options = [f"{loader}.dataset.data_root={root}" for loader in ("train_dataloader", "val_dataloader",
                                                                   "test_dataloader")]
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), str(Path(__file__).parent), env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, str(REPO / "tools" / "train.py"), str(config), "--work-dir",
                             str(work_dir), "--cfg-options", *options],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0, result.stdout[-2000:]
    assert "NonFiniteLossError: non-finite loss at iteration 1 (epoch 1): loss not finite; loss terms: loss=nan" \
        in result.stderr, result.stderr[-3000:]
    assert not (work_dir / "metrics.json").exists() and not list(work_dir.glob("epoch_*.pth"))
