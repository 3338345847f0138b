"""mmengine's Runner resumes its own checkpoints on torch >= 2.6 (weights_only=True) with our
narrow allow-list, while unknown globals stay refused."""

import pickle
import subprocess
import sys

import pytest
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

import mae_transfer.integrations.engine  # noqa: F401  (installs the allow-list)


class _Regression(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 1)

    def forward(self, inputs, targets, mode="loss"):
        inputs, targets = torch.stack(inputs), torch.stack(targets)
        loss = torch.nn.functional.mse_loss(self.linear(inputs), targets)
        return {"loss": loss} if mode == "loss" else [loss]


class _Points(Dataset):
    def __len__(self):
        return 32

    def __getitem__(self, index):
        x = torch.linspace(-1, 1, 4) * (index + 1) / 32
        return {"inputs": x, "targets": x.sum(0, keepdim=True)}


def _runner(work_dir, max_iters, resume=False):
    return Runner(
        model=_Regression(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=_Points(), sampler=dict(type="DefaultSampler", shuffle=True), batch_size=4, num_workers=0
        ),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type="CheckpointHook", interval=3, by_epoch=False)),
        resume=resume,
        randomness=dict(seed=0),
    )


def test_runner_resumes_from_its_checkpoint_with_weights_only_loading(tmp_path):
    _runner(tmp_path, max_iters=3).train()
    checkpoint = tmp_path / "iter_3.pth"
    # without the allow-list (a fresh interpreter), torch's default loading refuses the file
    bare = subprocess.run(
        [sys.executable, "-c", f"import torch; torch.load({str(checkpoint)!r})"], capture_output=True, text=True
    )
    assert bare.returncode != 0 and "HistoryBuffer" in bare.stderr
    # a fresh interpreter loads it (mmengine's class-level tables are still empty there)
    fresh = subprocess.run(
        [sys.executable, "-c", f"import mae_transfer.integrations.engine, torch; torch.load({str(checkpoint)!r})"],
        capture_output=True,
        text=True,
    )
    assert fresh.returncode == 0, fresh.stderr
    resumed = _runner(tmp_path, max_iters=6, resume=True)
    resumed.train()
    assert resumed.iter == 6
    assert (tmp_path / "iter_6.pth").exists()
    logs = "".join(path.read_text() for path in tmp_path.glob("*/*.log"))
    assert "resumed epoch: 0, iter: 3" in logs


class _Payload:
    def __reduce__(self):
        return (print, ("payload ran",))


def test_unknown_globals_are_still_refused(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as stream:
        pickle.dump({"state_dict": {}, "extra": _Payload()}, stream)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)


class _GetattrPayload:
    def __init__(self, owner, name):
        self.owner, self.name = owner, name

    def __reduce__(self):
        return (getattr, (self.owner, self.name))


def test_getattr_stand_in_resolves_nothing_but_history_buffer_statistics(tmp_path):
    for owner, name in [(HistoryBuffer, "__init__"), (torch.Tensor, "add_")]:
        path = tmp_path / "getattr.pth"
        torch.save({"extra": _GetattrPayload(owner, name)}, path)
        with pytest.raises(pickle.UnpicklingError, match="only HistoryBuffer statistics"):
            torch.load(path)
