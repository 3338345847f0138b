"""Test-only mmengine hook: what one DDP rank trained, written to ``WORK_DIR/ddp_rank{RANK}.json``.

Imported by the tests/distributed runs through ``custom_imports`` (this folder is put on the
subprocess's PYTHONPATH). Per rank it records the local training losses, the optimizer's step
count, every validation's metrics, and a SHA-256 digest of every parameter before and after
training, so the test can compare the ranks.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import torch
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


def parameter_digests(model: torch.nn.Module) -> dict[str, str]:
    """Name -> SHA-256 of the parameter's float32 bytes."""
    digests = {}
    for name, param in model.named_parameters():
        data = param.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()
        digests[name] = hashlib.sha256(data).hexdigest()
    return digests


def _number(value) -> float | None:
    if hasattr(value, "item"):
        value = value.item()
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@HOOKS.register_module()
class DDPRecordHook(Hook):
    """Records one rank's training for the DDP tests (see module docstring)."""

    priority = "LOWEST"

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.validations: list[dict[str, float]] = []
        self.initial: dict[str, str] = {}

    def before_train(self, runner) -> None:
        self.initial = parameter_digests(self._module(runner))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        loss = _number((outputs or {}).get("loss"))
        self.losses.append(loss if loss is not None else math.nan)

    def after_val_epoch(self, runner, metrics=None) -> None:
        numbers = {name: _number(value) for name, value in (metrics or {}).items()}
        self.validations.append({name: value for name, value in numbers.items() if value is not None})

    def after_train(self, runner) -> None:
        optimizer = runner.optim_wrapper.optimizer
        steps = [int(_number(state["step"])) for state in optimizer.state.values() if "step" in state]
        record = {
            "rank": get_rank(),
            "world_size": get_world_size(),
            "iterations": runner.iter,
            "optimizer_steps": max(steps) if steps else 0,
            "losses": self.losses,
            "validations": self.validations,
            "initial": self.initial,
            "final": parameter_digests(self._module(runner)),
            "wrapper": type(runner.model).__name__,
        }
        path = Path(runner.work_dir) / f"ddp_rank{get_rank()}.json"
        path.write_text(json.dumps(record, indent=1))

    @staticmethod
    def _module(runner) -> torch.nn.Module:
        return runner.model.module if is_model_wrapper(runner.model) else runner.model
