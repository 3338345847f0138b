"""With TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 in the environment, a code payload in a checkpoint is
still refused by every mmengine load path (issue 12 item 2): runner.resume, ``load_from``,
``load_checkpoint``, ``tools/train.py --resume`` and ``tools/test.py``; the payload never runs."""

from __future__ import annotations

import builtins
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader, load_checkpoint

from mae_transfer.checkpoints import CheckpointError
from mae_transfer.data import make_dataset
from mae_transfer.integrations.engine import load_local_checkpoint  # noqa: F401  (routes the loads)

from engine_helpers import Regression, regression_runner

REPO = Path(__file__).resolve().parents[2]
SMOKE_INAT = REPO / "configs" / "smoke" / "inat_finetune.py"


class Payload:
    """Unpickling this with a plain unpickler runs ``exec`` and writes ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def _poisoned_checkpoint(path: Path, marker: Path) -> Path:
    """An mmengine-shaped checkpoint (meta, state_dict) carrying a payload."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = Regression().state_dict()
    torch.save({"meta": {"epoch": 1, "iter": 3, "payload": Payload(marker)}, "state_dict": state}, path)
    return path


@pytest.fixture()
def env_forces_no_weights_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")


def test_bare_torch_load_would_run_the_payload(tmp_path: Path, env_forces_no_weights_only) -> None:
    """The threat is real: torch.load without weights_only obeys the variable and runs the code."""
    marker = tmp_path / "ran"
    path = _poisoned_checkpoint(tmp_path / "c.pth", marker)
    torch.load(path)
    assert marker.exists()


@pytest.mark.parametrize("how", ["checkpoint_loader", "load_checkpoint", "resume", "load_from"])
def test_every_mmengine_load_path_refuses_the_payload(tmp_path: Path, env_forces_no_weights_only, how: str) -> None:
    marker = tmp_path / "ran"
    path = _poisoned_checkpoint(tmp_path / "work" / "iter_3.pth", marker)
    with pytest.raises(CheckpointError) as caught:
        if how == "checkpoint_loader":
            CheckpointLoader.load_checkpoint(str(path), map_location="cpu")
        elif how == "load_checkpoint":
            load_checkpoint(Regression(), str(path), map_location="cpu")
        else:
            (tmp_path / "work" / "last_checkpoint").write_text(str(path))
            runner = regression_runner(tmp_path / "work", max_iters=6, resume=how == "resume",
                                       load_from=None if how == "resume" else str(path))
            runner.train()
    message = str(caught.value)
    assert str(path) in message and "refusing to load" in message and "builtins.exec" in message
    assert "nothing from the file was executed" in message
    assert not marker.exists()


def test_own_checkpoints_still_resume_with_the_variable_set(tmp_path: Path, env_forces_no_weights_only) -> None:
    regression_runner(tmp_path, max_iters=3).train()
    resumed = regression_runner(tmp_path, max_iters=6, resume=True)
    resumed.train()
    assert resumed.iter == 6


def test_missing_local_file_is_still_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        CheckpointLoader.load_checkpoint(str(tmp_path / "absent.pth"))


@pytest.mark.parametrize("url", ["https://example.org/w.pth", "torchvision://resnet50", "open-mmlab://x"])
def test_remote_checkpoints_are_refused_without_a_download(url: str) -> None:
    with pytest.raises(CheckpointError, match="remote checkpoints are not loaded") as caught:
        CheckpointLoader.load_checkpoint(url)
    assert str(caught.value).startswith(url)


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="", TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _data_options(root: Path) -> list[str]:
    return [f"{loader}.dataset.data_root={root}" for loader in ("train_dataloader", "val_dataloader",
                                                                "test_dataloader")]


@pytest.mark.slow
@pytest.mark.parametrize("tool", ["train.py --resume", "test.py"])
def test_tools_refuse_a_payload_under_the_work_dir(tmp_path: Path, tool: str) -> None:
    root = make_dataset("inat2017", tmp_path / "data", train_per_class=2, val_per_class=1)
    work_dir = tmp_path / "work"
    marker = tmp_path / "ran"
    path = _poisoned_checkpoint(work_dir / "epoch_1.pth", marker)
    (work_dir / "last_checkpoint").write_text(str(path))
    if tool == "test.py":
        command = [sys.executable, str(REPO / "tools" / "test.py"), str(SMOKE_INAT), str(path)]
    else:
        command = [sys.executable, str(REPO / "tools" / "train.py"), str(SMOKE_INAT), "--resume"]
    command += ["--work-dir", str(work_dir), "--cfg-options", *_data_options(root)]
    result = subprocess.run(command, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert f"{path}: refusing to load: the pickle references 'builtins.exec'" in result.stderr, result.stderr[-3000:]
    assert not marker.exists()
