"""A tiny real mmengine training set-up (linear regression on 32 points) for the engine tests."""

from __future__ import annotations

from pathlib import Path

import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from mae_transfer.integrations import engine


class Regression(BaseModel):
    """One linear layer trained with MSE."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 1)

    def forward(self, inputs, targets, mode="loss"):
        inputs, targets = torch.stack(inputs), torch.stack(targets)
        loss = torch.nn.functional.mse_loss(self.linear(inputs), targets)
        return {"loss": loss} if mode == "loss" else [loss]


class Points(Dataset):
    """32 points on a line."""

    def __len__(self) -> int:
        return 32

    def __getitem__(self, index: int) -> dict:
        x = torch.linspace(-1, 1, 4) * (index + 1) / 32
        return {"inputs": x, "targets": x.sum(0, keepdim=True)}


def regression_runner(work_dir: Path, max_iters: int, resume: bool = False, load_from: str | None = None,
                      custom_hooks: list | None = None) -> Runner:
    """A Runner checkpointing every 3 iterations, with the hooks tools/train.py adds."""
    return Runner(
        model=Regression(),
        work_dir=str(work_dir),
        train_dataloader=dict(dataset=Points(), sampler=dict(type="DefaultSampler", shuffle=True), batch_size=4,
                              num_workers=0),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type="CheckpointHook", interval=3, by_epoch=False)),
        custom_hooks=[*engine.safety_hooks(), *(custom_hooks or [])],
        resume=resume,
        load_from=load_from,
        randomness=dict(seed=0),
    )
