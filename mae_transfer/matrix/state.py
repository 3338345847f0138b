"""Per-cell state files: pending, submitted, running, interrupted, done or failed.

``CELL_DIR/state.json`` is rewritten atomically at every transition. A running trainer refreshes
its ``heartbeat`` every ``HEARTBEAT_SECONDS``. A cell recorded as running is *interrupted* (the
next run resumes it) when its process is gone (same host, dead pid) or its heartbeat is older
than ``STALE_SECONDS`` (a trainer that died on another host). A trainer stopped by SIGINT or
SIGTERM records ``interrupted`` itself and its attempt is not counted.

One trainer per cell: :func:`cell_lock` takes an exclusive ``flock`` on ``CELL_DIR/.cell.lock``
for the whole attempt; the kernel (or the NFS lock manager) releases it when the process dies,
even by SIGKILL.

Progress and ETA come from the trainer's ``train/progress.json`` record (`mae_transfer.records`).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
import threading
import time
import zipfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

from mae_transfer.records import atomic_write_json, read_progress_record

# "blocked": the cell waits on a pre-training cell that failed (not an attempt of its own; the
# reason is in error_tail). It runs once the pre-training succeeds.
STATES = ("pending", "submitted", "running", "interrupted", "done", "failed", "blocked")
LOCK_NAME = ".cell.lock"
HEARTBEAT_SECONDS = float(os.environ.get("MAE_TRANSFER_HEARTBEAT_SECONDS", "30"))
STALE_SECONDS = float(os.environ.get("MAE_TRANSFER_STALE_SECONDS", "600"))
_WRITE_LOCK = threading.Lock()
LOG_NAME = "log.txt"
STATE_NAME = "state.json"
RESULT_NAME = "result.json"
CELL_NAME = "cell.json"


@dataclass
class CellState:
    """What ``state.json`` records about a cell."""

    state: str = "pending"
    attempts: int = 0
    pid: int | None = None
    host: str | None = None
    started: float | None = None
    finished: float | None = None
    resumed_from_iter: int | None = None
    error_tail: str = ""
    heartbeat: float | None = None
    job_id: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def stale(self) -> bool:
        """Recorded as running, but no heartbeat for ``STALE_SECONDS`` (its trainer died, on any host)."""
        last = self.heartbeat or self.started
        return self.state == "running" and last is not None and time.time() - last > STALE_SECONDS

    @property
    def interrupted(self) -> bool:
        """Stopped without finishing: recorded so, or running with its process gone or its heartbeat stale."""
        if self.state == "interrupted":
            return True
        if self.state != "running":
            return False
        return (self.host == socket.gethostname() and not _alive(self.pid)) or self.stale


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" not in status


def read_state(cell_dir: Path) -> CellState:
    """The state of the cell in ``cell_dir`` (pending when there is no readable state file)."""
    try:
        payload = json.loads((cell_dir / STATE_NAME).read_text())
        known = {k: v for k, v in payload.items() if k in CellState.__dataclass_fields__}
        state = CellState(**known)
    except (OSError, ValueError, TypeError):
        return CellState()
    return state if state.state in STATES else CellState()


def describe(cell_dir: Path) -> tuple[str, str]:
    """A cell's state as reports show it, and the last line of its reason.

    The state is one of ``STATES`` ("pending" without a readable ``state.json``); a cell
    recorded as running whose process is gone or whose heartbeat is stale reads "interrupted".
    The reason is the last line of ``error_tail`` for a failed or blocked cell, else "".
    """
    state = read_state(cell_dir)
    shown = "interrupted" if state.interrupted else state.state
    lines = state.error_tail.strip().splitlines() if shown in ("failed", "blocked") else []
    return shown, lines[-1] if lines else ""


def write_state(cell_dir: Path, state: CellState) -> None:
    cell_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(cell_dir / STATE_NAME, asdict(state))


def _update(cell_dir: Path, change) -> CellState:
    """Read, change and rewrite ``state.json`` (serialised between this process's threads)."""
    with _WRITE_LOCK:
        state = read_state(cell_dir)
        change(state)
        write_state(cell_dir, state)
        return state


def mark_running(cell_dir: Path, resumed_from_iter: int | None) -> CellState:
    """Record the start of an attempt by this process."""

    def change(state: CellState) -> None:
        state.state, state.attempts, state.pid, state.host = "running", state.attempts + 1, os.getpid(), socket.gethostname()
        state.started, state.finished, state.resumed_from_iter = time.time(), None, resumed_from_iter
        state.heartbeat = state.started
        state.job_id = slurm_job_id()

    return _update(cell_dir, change)


def slurm_job_id() -> str | None:
    """This process's SLURM job (``ARRAYJOB_TASK`` for an array task, as squeue names it), or None."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID")


def beat(cell_dir: Path) -> CellState:
    """Refresh the running attempt's heartbeat."""

    def change(state: CellState) -> None:
        if state.state == "running" and state.pid == os.getpid():
            state.heartbeat = time.time()

    return _update(cell_dir, change)


def mark_finished(cell_dir: Path, ok: bool, error_tail: str = "") -> CellState:
    """Record the end of an attempt: done, or failed with the last lines of its log."""

    def change(state: CellState) -> None:
        state.state, state.finished, state.pid = ("done" if ok else "failed"), time.time(), None
        state.error_tail = "" if ok else error_tail
        state.history.append({"attempt": state.attempts, "ok": ok, "started": state.started, "finished": state.finished})

    return _update(cell_dir, change)


def mark_interrupted(cell_dir: Path, reason: str) -> CellState:
    """Record an attempt stopped by a signal (Ctrl-C, SLURM preemption): resumable, and not counted."""

    def change(state: CellState) -> None:
        state.history.append({"attempt": state.attempts, "ok": False, "interrupted": reason, "started": state.started,
                              "finished": time.time()})
        state.state, state.finished, state.pid = "interrupted", time.time(), None
        state.attempts = max(0, state.attempts - 1)
        state.error_tail = f"interrupted by {reason}; the next run resumes it (the attempt is not counted)"

    return _update(cell_dir, change)


def mark_submitted(cell_dir: Path, job_id: str) -> CellState:
    """Record a SLURM submission: the job id is checked before the cell is submitted again."""

    def change(state: CellState) -> None:
        state.state, state.job_id, state.pid, state.host = "submitted", job_id, None, None
        state.started = state.heartbeat = time.time()

    return _update(cell_dir, change)


def mark_blocked(cell_dir: Path, reason: str) -> CellState:
    """Record that the cell waits on a pre-training cell that failed (not an attempt; no job)."""

    def change(state: CellState) -> None:
        state.state, state.pid, state.job_id, state.finished = "blocked", None, None, time.time()
        state.error_tail = reason

    return _update(cell_dir, change)


class CellBusy(RuntimeError):
    """Another trainer holds the cell's lock."""


@contextmanager
def cell_lock(cell_dir: Path) -> Iterator[None]:
    """Hold the cell's exclusive lock for the whole attempt (one trainer per cell).

    Raises:
        CellBusy: another process (on this host, or on another host sharing the filesystem)
            holds it; the message names the holder recorded in ``state.json``.
    """
    cell_dir.mkdir(parents=True, exist_ok=True)
    path = cell_dir / LOCK_NAME
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            holder = read_state(cell_dir)
            raise CellBusy(f"{cell_dir}: another trainer holds {path} (state.json: {holder.state}, pid {holder.pid} "
                           f"on {holder.host}, job {holder.job_id}); not starting a second one") from error
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def lock_held(cell_dir: Path) -> bool:
    """Some process holds the cell's lock now."""
    path = cell_dir / LOCK_NAME
    if not path.exists():
        return False
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def tail(path: Path, lines: int = 20, max_bytes: int = 65536) -> str:
    """The last ``lines`` lines of a text file ("" when it does not exist)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            data = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


@dataclass(frozen=True)
class Progress:
    """Where a training run stands, from its ``progress.json`` record."""

    text: str
    fraction: float | None
    eta: str | None


def read_progress(cell_dir: Path) -> Progress:
    """Progress and ETA of the cell's training, from the trainer's structured progress record."""
    record = read_progress_record(cell_dir / "train")
    if record is None:
        return Progress("", None, None)
    total = f"/{record.total}" if record.total else ""
    text = f"iter {record.step}{total}" + (f" (epoch {record.epoch})" if record.epoch else "")
    fraction = record.step / record.total if record.total else None
    eta = None if record.eta_seconds is None else str(timedelta(seconds=round(record.eta_seconds)))
    return Progress(text, fraction, eta)


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
