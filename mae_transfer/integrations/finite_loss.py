"""Stop training at the first non-finite loss, naming the iteration and every loss term.

A NaN loss does not stop mmengine: the optimizer step writes NaN into every weight, training
runs to the end and evaluation reports chance accuracy as a result. This hook reads the loss
terms each training iteration returns and raises before the iteration is logged or
checkpointed, so the last checkpoint on disk is still a finite one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import EpochBasedTrainLoop


class NonFiniteLossError(FloatingPointError):
    """A training iteration produced a NaN or infinite loss term."""


def _value(value: object) -> float | None:
    """A logged term as a float (the mean of a tensor), or None when it is not a number."""
    if isinstance(value, torch.Tensor):
        return float(value.detach().float().mean()) if value.numel() else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def non_finite_loss_message(outputs: Mapping[str, object], iteration: int, epoch: int | None) -> str | None:
    """The error text when a loss term in ``outputs`` is NaN or infinite, else None.

    Args:
        outputs: the log variables a ``train_step`` returns (``loss`` and its terms).
        iteration: the 1-based training iteration.
        epoch: the 1-based epoch for epoch-based loops, None otherwise.
    """
    values = {name: _value(value) for name, value in outputs.items()}
    bad = [name for name, value in values.items() if "loss" in name and value is not None and not math.isfinite(value)]
    if not bad:
        return None
    terms = ", ".join(f"{name}={value:.6g}" for name, value in values.items() if value is not None)
    where = f"iteration {iteration}" + (f" (epoch {epoch})" if epoch is not None else "")
    return (f"non-finite loss at {where}: {', '.join(bad)} not finite; loss terms: {terms}. Stopped before "
            "this iteration is logged or checkpointed; check the pretrained weights (mae-transfer inspect), the "
            "learning rate and the input data")


@HOOKS.register_module()
class MAETransferFiniteLossHook(Hook):
    """Raises `NonFiniteLossError` after the first training iteration whose loss is not finite."""

    # before the logger (BELOW_NORMAL) and checkpoint (VERY_LOW) hooks see the iteration
    priority = "VERY_HIGH"

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not isinstance(outputs, Mapping):
            return
        by_epoch = isinstance(runner.train_loop, EpochBasedTrainLoop)
        message = non_finite_loss_message(outputs, runner.iter + 1, runner.epoch + 1 if by_epoch else None)
        if message:
            raise NonFiniteLossError(message)
