"""The training failpoints of `mae_transfer.failpoints`, as an mmengine hook (testing only).

``tools/train.py`` adds `MAETransferFailpointHook` only when ``MAE_TRANSFER_FAILPOINT`` is set
(`mae_transfer.integrations.engine.safety_hooks`); a normal run never has it.
"""

from __future__ import annotations

import io
import os

import mmengine.runner.runner as runner_module
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import EpochBasedTrainLoop

from mae_transfer import failpoints


def _mid_epoch_iteration(runner) -> int:
    """The 1-based iteration after which ``mid_epoch`` fires (see `mae_transfer.failpoints`)."""
    loop = runner.train_loop
    if isinstance(loop, EpochBasedTrainLoop):
        per_epoch = len(loop.dataloader)
        epoch = min(1, loop.max_epochs - 1)
        return epoch * per_epoch + max(1, per_epoch // 2)
    return max(1, loop.max_iters // 2)


def _half_written_save(save):
    """mmengine's ``save_checkpoint``, killed on the second call with half the bytes on disk."""
    calls = [0]

    def save_checkpoint(checkpoint, filename, *args, **kwargs):
        calls[0] += 1
        if calls[0] < 2 or not failpoints.armed("checkpoint_write"):
            return save(checkpoint, filename, *args, **kwargs)
        with io.BytesIO() as buffer:
            torch.save(checkpoint, buffer)
            data = buffer.getvalue()
        with open(filename, "wb") as handle:  # what LocalBackend.put does, stopped halfway
            handle.write(data[: len(data) // 2])
            handle.flush()
            os.fsync(handle.fileno())
        failpoints.crash("checkpoint_write", f"writing {filename} ({len(data) // 2} of {len(data)} bytes)")

    return save_checkpoint


@HOOKS.register_module()
class MAETransferFailpointHook(Hook):
    """SIGKILLs the training process at the armed failpoint (``MAE_TRANSFER_FAILPOINT``)."""

    priority = "HIGHEST"  # before any hook records the iteration or validation

    def __init__(self) -> None:
        self.point = failpoints.active()
        self._first = True

    def before_train(self, runner) -> None:
        if self.point == "checkpoint_write":
            runner_module.save_checkpoint = _half_written_save(runner_module.save_checkpoint)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        done = runner.iter + 1  # the loop counts the iteration after its hooks
        if self.point == "first_step" and self._first:
            failpoints.crash_if("first_step", f"after iteration {done}")
        if self.point == "mid_epoch" and done == _mid_epoch_iteration(runner):
            failpoints.crash_if("mid_epoch", f"after iteration {done}")
        self._first = False

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if self.point == "evaluation" and batch_idx == 0:
            failpoints.crash_if("evaluation", f"after validation batch 1 at iteration {runner.iter}")
