"""Where a cell's training resumes from: the newest checkpoint that reads, and leftovers of killed writes."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path


def checkpoint_problem(path: Path) -> str | None:
    """Why a checkpoint file cannot be resumed from (truncated, corrupt), or None when it reads.

    torch.save's zip format: the central directory and every member's CRC are checked (one
    read of the file, nothing unpickled). Other formats are not checked here.
    """
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
        if magic != b"PK\x03\x04":
            return None if magic else "empty file"
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as error:
        return f"{type(error).__name__}: {error}"
    return f"member {bad} fails its CRC check" if bad else None


def _checkpoint_number(path: Path) -> int | None:
    number = re.search(r"(\d+)\.pth$", path.name)
    return int(number.group(1)) if number else None


def remove_stale_tmp(cell_dir: Path, name: str) -> list[Path]:
    """Delete the temporary files of ``name`` that a killed `mae_transfer.records.atomic_write_json` left behind.

    Call with the cell's lock held: no other writer of the cell's files is running.
    """
    removed = []
    for path in cell_dir.glob(f".{name}.*.tmp"):
        try:
            path.unlink()
            removed.append(path)
        except OSError:
            pass
    return removed


def usable_checkpoint(train_dir: Path) -> tuple[tuple[Path, int | None] | None, list[str]]:
    """The newest checkpoint that reads, starting from mmengine's ``last_checkpoint``.

    A truncated or corrupt latest checkpoint is skipped for the previous one (``epoch_*.pth`` /
    ``iter_*.pth`` by number). An empty ``last_checkpoint`` (mmengine rewrites it in place after
    each save; a kill there empties it) falls back to the numbered checkpoints too; a missing one
    means training from the start. Returns the checkpoint (or None: train from the start) and
    one message per skipped file, naming it and why.
    """
    pointer = train_dir / "last_checkpoint"
    latest = latest_checkpoint_iter(train_dir)
    skipped = []
    if latest is None:
        try:
            emptied = not pointer.read_text().strip()
        except OSError:
            emptied = False
        if not emptied:
            return None, []
        skipped.append(f"{pointer} is empty (the run was killed while mmengine rewrote it); "
                       "taking the newest numbered checkpoint")
    candidates = [latest] if latest else []
    for path in sorted(train_dir.glob("*.pth"), key=lambda p: _checkpoint_number(p) or -1, reverse=True):
        number = _checkpoint_number(path)
        if latest is None or (path != latest[0] and number is not None and (latest[1] is None or number < latest[1])):
            if number is not None:
                candidates.append((path, number))
    for path, number in candidates:
        problem = checkpoint_problem(path)
        if problem is None:
            return (path, number), skipped
        skipped.append(f"checkpoint {path} is unreadable ({problem}); not resuming from it")
    return None, skipped


def latest_checkpoint_iter(train_dir: Path) -> tuple[Path, int | None] | None:
    """The checkpoint mmengine would resume from (``last_checkpoint``) and its iteration/epoch."""
    pointer = train_dir / "last_checkpoint"
    try:
        checkpoint = Path(pointer.read_text().strip())
    except OSError:
        return None
    if not checkpoint.is_absolute():
        checkpoint = train_dir / checkpoint
    if not checkpoint.is_file():
        return None
    number = re.search(r"(\d+)\.pth$", checkpoint.name)
    return checkpoint, int(number.group(1)) if number else None
