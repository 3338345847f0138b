"""Per-cell state files: pending, running, done or failed, with attempts and the error tail.

``CELL_DIR/state.json`` is rewritten atomically at every transition. A cell recorded as
running whose process is gone (same host, dead pid) is *interrupted*: the next run resumes it.
Progress and ETA come from the tail of the cell's mmengine log.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATES = ("pending", "running", "done", "failed")
LOG_NAME = "log.txt"
STATE_NAME = "state.json"
RESULT_NAME = "result.json"
CELL_NAME = "cell.json"


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON to ``path`` through a temporary file and ``os.replace``: never half-written."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True, default=str)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


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
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def interrupted(self) -> bool:
        """Recorded as running, but its process on this host is gone."""
        return self.state == "running" and self.host == socket.gethostname() and not _alive(self.pid)


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


def write_state(cell_dir: Path, state: CellState) -> None:
    cell_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(cell_dir / STATE_NAME, asdict(state))


def mark_running(cell_dir: Path, resumed_from_iter: int | None) -> CellState:
    """Record the start of an attempt by this process."""
    state = read_state(cell_dir)
    state.state, state.attempts, state.pid, state.host = "running", state.attempts + 1, os.getpid(), socket.gethostname()
    state.started, state.finished, state.resumed_from_iter = time.time(), None, resumed_from_iter
    write_state(cell_dir, state)
    return state


def mark_finished(cell_dir: Path, ok: bool, error_tail: str = "") -> CellState:
    """Record the end of an attempt: done, or failed with the last lines of its log."""
    state = read_state(cell_dir)
    state.state, state.finished, state.pid = ("done" if ok else "failed"), time.time(), None
    state.error_tail = "" if ok else error_tail
    state.history.append({"attempt": state.attempts, "ok": ok, "started": state.started, "finished": state.finished})
    write_state(cell_dir, state)
    return state


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


_ITER = re.compile(r"Iter\(train\)\s*\[\s*(\d+)/(\d+)\]")
_EPOCH = re.compile(r"Epoch\(train\)\s*\[\s*(\d+)\]\s*\[\s*(\d+)/(\d+)\]")
_ETA = re.compile(r"eta:\s*([0-9:]+(?:\s*day[s]?,\s*[0-9:]+)?)")
_RESUMED = re.compile(r"resumed epoch:\s*(\d+),\s*iter:\s*(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class Progress:
    """Where a training run stands, from its log."""

    text: str
    fraction: float | None
    eta: str | None


def read_progress(cell_dir: Path) -> Progress:
    """Progress and ETA parsed from the last mmengine training line of the cell's log."""
    text = tail(cell_dir / LOG_NAME, lines=200)
    eta_match = None
    for line in reversed(text.splitlines()):
        if (m := _ITER.search(line)) is not None:
            done, total = int(m.group(1)), int(m.group(2))
            eta_match = _ETA.search(line)
            return Progress(f"iter {done}/{total}", done / total if total else None, eta_match and eta_match.group(1))
        if (m := _EPOCH.search(line)) is not None:
            eta_match = _ETA.search(line)
            return Progress(f"epoch {m.group(1)} iter {m.group(2)}/{m.group(3)}", None, eta_match and eta_match.group(1))
    return Progress("", None, None)


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
