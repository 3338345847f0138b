"""A checkpoint path that is not a regular file says what it is (issue 12), and nothing is read from it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mae_transfer.checkpoints import CheckpointError
from mae_transfer.checkpoints.reader import read_checkpoint, read_training_checkpoint


def _cases(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    (tmp_path / "dir.pth").mkdir()
    os.mkfifo(tmp_path / "fifo.pth")
    os.symlink(tmp_path / "loop_b.pth", tmp_path / "loop_a.pth")
    os.symlink(tmp_path / "loop_a.pth", tmp_path / "loop_b.pth")
    os.symlink(tmp_path / "gone.pth", tmp_path / "dangling.pth")
    return {"directory": (tmp_path / "dir.pth", "a directory, not a checkpoint file"),
            "fifo": (tmp_path / "fifo.pth", r"a FIFO \(named pipe\)"),
            "loop": (tmp_path / "loop_a.pth", "a symlink loop"),
            "dangling": (tmp_path / "dangling.pth", "a dangling symlink"),
            "missing": (tmp_path / "missing.pth", "no such checkpoint file")}


@pytest.mark.parametrize("reader", [read_checkpoint, read_training_checkpoint])
@pytest.mark.parametrize("case", ["directory", "fifo", "loop", "dangling", "missing"])
def test_path_that_is_not_a_file_is_named_for_what_it_is(tmp_path: Path, reader, case: str) -> None:
    path, message = _cases(tmp_path)[case]
    with pytest.raises(CheckpointError, match=message) as raised:
        reader(path)  # a FIFO would block a reader that opened it
    assert str(path) in str(raised.value)
