"""A test-only hook that writes a NaN into one backbone weight when training starts.

It stands for a NaN that got past the load check (a config that loads weights another way, a
bad init): `MAETransferFiniteLossHook` must stop the run at its first iteration.
"""

from __future__ import annotations

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class MAETransferTestNaNWeightHook(Hook):
    def before_train(self, runner) -> None:
        model = runner.model.module if hasattr(runner.model, "module") else runner.model
        with torch.no_grad():
            model.backbone.blocks[0].attn.qkv.weight[0, 0] = float("nan")
