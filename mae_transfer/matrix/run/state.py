"""The one owner of a cell's state: its file, its transitions, and every question asked about it.

A cell lives in ``CELL_DIR/state.json`` (rewritten atomically at every transition) through
``STATES``: pending -> running -> done | failed | interrupted, or pending -> submitted (a SLURM
job) -> running, and blocked while its pre-training cell failed. ``TRANSITIONS`` lists the legal
moves; any other raises :class:`IllegalTransition`. Nothing else in the package reads or writes
``state.json``: executors decide where and how a cell runs and ask this module the rest.

- *Done* means a valid ``result.json`` (`mae_transfer.matrix.run.result.validate_result`); a cell
  recorded done whose result is missing or invalid is failed, with the reason.
- *Interrupted*: recorded so (SIGINT/SIGTERM; the attempt is not counted), or recorded running with
  its process gone (same host) or no heartbeat for ``STALE_SECONDS`` (any host), or recorded
  submitted while SLURM says its job ended or forgot it (cancelled while pending).
- One trainer per cell: :func:`cell_lock` takes an exclusive ``flock`` on ``CELL_DIR/.cell.lock``
  for the whole attempt (released by the kernel even on SIGKILL); :func:`mark_running` refuses a
  cell whose lock another process holds.
- Attempts: :func:`mark_running` counts one, :func:`mark_interrupted` gives it back; :func:`select`
  leaves a cell that failed ``max_attempts`` times unless ``retry_failed``.
- A full disk: every cell dir keeps a small reserve file (:func:`reserve_space`), freed to record
  the failure that the full disk caused, so ``status`` can show it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from mae_transfer.matrix.run import slurm_jobs
from mae_transfer.matrix.run.files import LOCK_NAME, RESULT_NAME, STATE_NAME
from mae_transfer.matrix.run.result import ResultError, validate_result
from mae_transfer.records import atomic_write_json

logger = logging.getLogger(__name__)

# "blocked": the cell waits on a pre-training cell that failed (not an attempt of its own; the
# reason is in error_tail). It runs once the pre-training succeeds.
STATES = ("pending", "submitted", "running", "interrupted", "done", "failed", "blocked")
# The legal moves, from the state a cell is *in* (:func:`status`, not only what the file records).
TRANSITIONS = {
    "pending": {"running", "submitted", "blocked", "failed"},
    "submitted": {"running", "submitted", "interrupted", "blocked", "failed"},
    "running": {"done", "failed", "interrupted"},
    "interrupted": {"running", "submitted", "blocked", "failed"},
    "failed": {"running", "submitted", "blocked", "failed"},
    "blocked": {"running", "submitted", "blocked", "failed"},
    "done": set(),  # final while its result is valid (a forced re-run aside)
}
HEARTBEAT_SECONDS = float(os.environ.get("MAE_TRANSFER_HEARTBEAT_SECONDS", "30"))
STALE_SECONDS = float(os.environ.get("MAE_TRANSFER_STALE_SECONDS", "600"))
RESERVE_NAME = ".state.reserve"
RESERVE_BYTES = 64 * 1024
_WRITE_LOCK = threading.Lock()
_HELD_LOCKS: set[Path] = set()  # cell dirs whose lock this process holds

JobState = Callable[[str], "str | None"]


class IllegalTransition(RuntimeError):
    """A state change that a cell in its current state cannot make; names the cell dir and both states."""


class CellBusy(RuntimeError):
    """Another trainer holds the cell's lock."""


@dataclass
class CellState:
    """What ``state.json`` records about a cell (``problems``: what the typed reader repaired, not written)."""

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
    problems: list[str] = field(default_factory=list, compare=False)

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
        status_text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" not in status_text


# ---------------------------------------------------------------------------------------------
# Reading and writing the file


def _typed(path: Path, key: str, value: Any, kind: str, problems: list[str]) -> Any:
    """``value`` as the field's type; a value that is not is repaired to the default, with a message."""
    def refuse(default: Any) -> Any:
        problems.append(f"{path}: key {key!r}: expected {kind}, found {value!r}; read as {default!r}")
        return default

    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            return refuse(None) if value is not None else None
        if isinstance(value, str):
            return int(value) if value.strip().isdigit() else refuse(None)
        return value
    if kind == "number":
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            return refuse(None)
        return float(value)
    if kind == "text":
        if value is None or isinstance(value, str):
            return value
        return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else refuse(None)
    if kind == "history":
        if isinstance(value, list) and all(isinstance(entry, dict) for entry in value):
            return value
        return refuse([])
    raise ValueError(kind)


_FIELD_KINDS = {"attempts": "int", "pid": "int", "host": "text", "started": "number", "finished": "number",
                "resumed_from_iter": "int", "error_tail": "text", "heartbeat": "number", "job_id": "text",
                "history": "history"}


def read_state(cell_dir: Path) -> CellState:
    """The recorded state of the cell in ``cell_dir``, read through one typed reader.

    No file: pending. An unreadable file (not JSON, not an object, an unknown state): pending,
    with the reason in ``problems``. A field of the wrong type (a list for ``pid``, a string
    heartbeat) is repaired to its default, named in ``problems``; each problem is logged.
    """
    path = Path(cell_dir) / STATE_NAME
    try:
        text = path.read_text()
    except FileNotFoundError:
        return CellState()
    except OSError as error:
        return _unreadable(path, f"cannot read: {error.strerror or error}")
    try:
        payload = json.loads(text)
    except ValueError as error:
        return _unreadable(path, f"not valid JSON ({error})")
    if not isinstance(payload, dict):
        return _unreadable(path, f"expected a JSON object, found {type(payload).__name__}")
    if payload.get("state") not in STATES:
        return _unreadable(path, f"key 'state': expected one of {', '.join(STATES)}, found {payload.get('state')!r}")
    problems: list[str] = []
    values = {"state": payload["state"]}
    for key, kind in _FIELD_KINDS.items():
        if key in payload:
            values[key] = _typed(path, key, payload[key], kind, problems)
    defaults = CellState()
    values = {key: (getattr(defaults, key) if value is None and key in ("attempts", "error_tail", "history") else value)
              for key, value in values.items()}
    if values.get("attempts") is not None and values["attempts"] < 0:
        problems.append(f"{path}: key 'attempts': expected a count >= 0, found {values['attempts']}; read as 0")
        values["attempts"] = 0
    for problem in problems:
        logger.warning("%s", problem)
    return CellState(**values, problems=problems)


def _unreadable(path: Path, why: str) -> CellState:
    message = f"{path}: {why}; read as pending"
    logger.warning("%s", message)
    return CellState(problems=[message])


def write_state(cell_dir: Path, state: CellState, use_reserve: bool = False) -> None:
    """Write ``state`` as the cell's ``state.json`` (atomically).

    ``use_reserve``: on a full disk, free the cell's reserve (:func:`reserve_space`) and write once
    more; the transitions that record a failure or an interruption use it, so ``status`` can say why.
    """
    cell_dir.mkdir(parents=True, exist_ok=True)
    payload = {key: value for key, value in asdict(state).items() if key != "problems"}
    try:
        atomic_write_json(cell_dir / STATE_NAME, payload)
    except OSError as error:
        reserve = cell_dir / RESERVE_NAME
        if not use_reserve or error.errno != errno.ENOSPC or not reserve.is_file():
            raise
        logger.warning("%s: the disk is full; freeing the cell's reserve to record its state", cell_dir)
        reserve.unlink()
        atomic_write_json(cell_dir / STATE_NAME, payload)


def reserve_space(cell_dir: Path) -> None:
    """Keep ``RESERVE_BYTES`` on disk for the cell's state, so a failure on a full disk can still be recorded."""
    reserve = Path(cell_dir) / RESERVE_NAME
    try:
        if reserve.stat().st_size >= RESERVE_BYTES:
            return
    except FileNotFoundError:
        pass
    except OSError:
        return
    try:
        with reserve.open("wb") as handle:
            handle.write(b"\0" * RESERVE_BYTES)
    except OSError:  # no room for it now: nothing half-made is left
        with contextlib.suppress(OSError):
            reserve.unlink()


def _transition(cell_dir: Path, to: str, change: Callable[[CellState], None], *, force: bool = False,
                use_reserve: bool = False) -> CellState:
    """Read, check, change and rewrite ``state.json`` (serialised between this process's threads)."""
    with _WRITE_LOCK:
        # done follows the result's write: only the recorded state (running) decides it
        current = status(cell_dir, validate=to != "done")
        if to not in TRANSITIONS[current.state] and not force:
            raise IllegalTransition(f"{cell_dir}: a cell that is {current.state} cannot become {to}"
                                    + (f" ({current.reason})" if current.reason else ""))
        state = current.recorded
        change(state)
        write_state(cell_dir, state, use_reserve=use_reserve)
        return state


# ---------------------------------------------------------------------------------------------
# Questions


@dataclass(frozen=True)
class CellStatus:
    """The state a cell is in (one of ``STATES``), why (one line), and what its file records."""

    state: str
    reason: str
    recorded: CellState


def is_done(cell_dir: Path, cell_id: str | None = None) -> bool:
    """The cell has a valid ``result.json`` (its own: ``cell_id``, else the one in ``cell.json``)."""
    try:
        validate_result(Path(cell_dir) / RESULT_NAME, cell_id)
    except ResultError:
        return False
    return True


def status(cell_dir: Path, cell_id: str | None = None, job_state: JobState | None = None,
           validate: bool = True) -> CellStatus:
    """The state the cell is in now, with the reason; every report and decision reads it here.

    ``job_state`` (e.g. `mae_transfer.matrix.run.slurm_jobs.slurm_job_state`) is asked about a
    submitted cell's job: one SLURM ended or forgot before the cell started is interrupted.
    ``validate=False`` takes a recorded ``done`` as done without reading ``result.json`` (a live
    view polling many cells).
    """
    cell_dir = Path(cell_dir)
    recorded = read_state(cell_dir)
    problem = recorded.problems[-1] if recorded.problems else ""
    if validate:
        try:
            validate_result(cell_dir / RESULT_NAME, cell_id)
            return CellStatus("done", "", recorded)
        except ResultError as error:
            if recorded.state == "done":
                return CellStatus("failed", f"recorded done, but its result is not valid: {error}", recorded)
    if recorded.state == "running" and recorded.interrupted:
        why = (f"no heartbeat for over {STALE_SECONDS:.0f} s" if recorded.stale
               else f"its trainer (pid {recorded.pid} on {recorded.host}) is gone")
        return CellStatus("interrupted", why, recorded)
    if recorded.state == "submitted" and recorded.job_id and job_state is not None:
        job = job_state(recorded.job_id)
        if job is None or job in slurm_jobs.ENDED_STATES:
            return CellStatus("interrupted", f"SLURM job {recorded.job_id} ended ({job or 'no longer known'}) "
                                             "before the cell started; the next run submits it again", recorded)
    lines = recorded.error_tail.strip().splitlines()
    reason = lines[-1] if lines and recorded.state in ("failed", "blocked", "interrupted") else problem
    return CellStatus(recorded.state, reason, recorded)


def describe(cell_dir: Path) -> tuple[str, str]:
    """A cell's state as reports show it (see :func:`status`), and for a failed or blocked one the reason."""
    shown = status(cell_dir)
    return shown.state, shown.reason if shown.state in ("failed", "blocked") else ""


def lock_held(cell_dir: Path) -> bool:
    """Some process holds the cell's lock now (this one included)."""
    if Path(cell_dir) in _HELD_LOCKS:
        return True
    return file_locked(Path(cell_dir) / LOCK_NAME)


def file_locked(path: Path) -> bool:
    """Some process holds an exclusive ``flock`` on the existing file ``path`` now (False: no such file)."""
    if not path.is_file():
        return False
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def blocked_reason(dependency_dir: Path) -> str:
    """Why a transfer cell cannot run: its pre-training cell failed (the failure's last line), or is not done."""
    dependency = status(dependency_dir)
    if dependency.state != "failed":
        return f"waits on the pre-training cell {Path(dependency_dir).name}, which is not done (state: {dependency.state})"
    lines = dependency.recorded.error_tail.strip().splitlines()
    return (f"waits on the pre-training cell {Path(dependency_dir).name}, which failed after "
            f"{dependency.recorded.attempts} attempt(s){': ' + lines[-1] if lines else ''}; the next 'mae-transfer run' "
            "retries it while it has attempts left (--retry-failed after that)")


# ---------------------------------------------------------------------------------------------
# Transitions


def mark_running(cell_dir: Path, resumed_from_iter: int | None, rerun: bool = False) -> CellState:
    """Record the start of an attempt by this process (one more attempt).

    Raises:
        CellBusy: another process holds the cell's lock (a second trainer).
        IllegalTransition: the cell is done (unless ``rerun``) or running in a live process.
    """
    cell_dir = Path(cell_dir)
    if cell_dir not in _HELD_LOCKS and lock_held(cell_dir):
        raise CellBusy(f"{cell_dir}: another trainer holds {cell_dir / LOCK_NAME}; not starting a second one")

    def change(state: CellState) -> None:
        state.state, state.attempts, state.pid, state.host = "running", state.attempts + 1, os.getpid(), socket.gethostname()
        state.started, state.finished, state.resumed_from_iter = time.time(), None, resumed_from_iter
        state.heartbeat = state.started
        state.job_id = slurm_job_id()

    return _transition(cell_dir, "running", change, force=rerun)


def slurm_job_id() -> str | None:
    """This process's SLURM job (``ARRAYJOB_TASK`` for an array task, as squeue names it), or None."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID")


def beat(cell_dir: Path) -> CellState:
    """Refresh the running attempt's heartbeat (this process's attempt only; no transition)."""
    with _WRITE_LOCK:
        state = read_state(cell_dir)
        if state.state == "running" and state.pid == os.getpid():
            state.heartbeat = time.time()
            write_state(cell_dir, state)
        return state


def mark_finished(cell_dir: Path, ok: bool, error_tail: str = "") -> CellState:
    """Record the end of an attempt: done (from running), or failed with the last lines of its log."""

    def change(state: CellState) -> None:
        state.state, state.finished, state.pid = ("done" if ok else "failed"), time.time(), None
        state.error_tail = "" if ok else error_tail
        state.history.append({"attempt": state.attempts, "ok": ok, "started": state.started, "finished": state.finished})

    return _transition(Path(cell_dir), "done" if ok else "failed", change, use_reserve=not ok)


def mark_interrupted(cell_dir: Path, reason: str) -> CellState:
    """Record an attempt stopped by a signal (Ctrl-C, SLURM preemption): resumable, and not counted."""

    def change(state: CellState) -> None:
        state.history.append({"attempt": state.attempts, "ok": False, "interrupted": reason, "started": state.started,
                              "finished": time.time()})
        state.state, state.finished, state.pid = "interrupted", time.time(), None
        state.attempts = max(0, state.attempts - 1)
        state.error_tail = f"interrupted by {reason}; the next run resumes it (the attempt is not counted)"

    return _transition(Path(cell_dir), "interrupted", change, use_reserve=True)


def mark_submitted(cell_dir: Path, job_id: str) -> CellState:
    """Record a SLURM submission: the job id is checked before the cell is submitted again."""

    def change(state: CellState) -> None:
        state.state, state.job_id, state.pid, state.host = "submitted", job_id, None, None
        state.started = state.heartbeat = time.time()

    return _transition(Path(cell_dir), "submitted", change)


def mark_blocked(cell_dir: Path, reason: str) -> CellState:
    """Record that the cell waits on a pre-training cell that failed (not an attempt; no job)."""

    def change(state: CellState) -> None:
        state.state, state.pid, state.job_id, state.finished = "blocked", None, None, time.time()
        state.error_tail = reason

    return _transition(Path(cell_dir), "blocked", change, use_reserve=True)


@contextmanager
def cell_lock(cell_dir: Path) -> Iterator[None]:
    """Hold the cell's exclusive lock for the whole attempt (one trainer per cell).

    Raises:
        CellBusy: another process (on this host, or on another host sharing the filesystem)
            holds it; the message names the holder recorded in ``state.json``.
    """
    cell_dir = Path(cell_dir)
    cell_dir.mkdir(parents=True, exist_ok=True)
    path = cell_dir / LOCK_NAME
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            holder = read_state(cell_dir)
            raise CellBusy(f"{cell_dir}: another trainer holds {path} (state.json: {holder.state}, pid {holder.pid} "
                           f"on {holder.host}, job {holder.job_id}); not starting a second one") from error
        _HELD_LOCKS.add(cell_dir)
        try:
            reserve_space(cell_dir)
            yield
        finally:
            _HELD_LOCKS.discard(cell_dir)
            fcntl.flock(handle, fcntl.LOCK_UN)


class Heartbeat:
    """Refresh ``state.json``'s heartbeat every ``HEARTBEAT_SECONDS`` while an attempt runs (a context)."""

    def __init__(self, cell_dir: Path) -> None:
        self.cell_dir, self.stop = Path(cell_dir), threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"heartbeat {self.cell_dir.name}", daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(HEARTBEAT_SECONDS):
            try:
                beat(self.cell_dir)
            except OSError as error:  # a full disk must not kill the attempt; the log says so
                logger.warning("%s: heartbeat not written: %s", self.cell_dir, error)

    def __enter__(self) -> "Heartbeat":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


# ---------------------------------------------------------------------------------------------
# Which cells a run starts


def waiting_on(cell, chosen_dirs: set[str], summary, job_waiting: Callable[[str], bool]) -> bool:
    """Whether a transfer cell can be started (or submitted) by this run, given its pre-training cell.

    It can when the pre-training is done, is started by this run, or (SLURM, ``job_waiting`` given)
    is queued as a job it can depend on. It is recorded ``blocked`` when the pre-training failed and
    is not retried, and ``queued`` when the pre-training runs elsewhere (a local run cannot wait).
    """
    if cell.depends_on is None or cell.depends_on in chosen_dirs:
        return True
    dependency = Path(cell.depends_on)
    if is_done(dependency):
        return True
    recorded = read_state(dependency)
    if recorded.state in ("submitted", "interrupted") and recorded.job_id and job_waiting(recorded.job_id):
        return True
    if recorded.state in ("running", "submitted") and not recorded.interrupted:
        summary.queued.append(cell.label)
        return False
    mark_blocked(Path(cell.work_dir), blocked_reason(dependency))
    summary.blocked.append(cell.label)
    return False


def select(plan, retry_failed: bool, summary, slurm: bool = False,
           job_waiting: Callable[[str], bool] | None = None) -> list:
    """The cells this run should start, recording the others in ``summary``.

    Done cells, cells another trainer holds, cells whose SLURM job is still queued, and cells that
    failed ``max_attempts`` times (unless ``retry_failed``) are left. Pre-training cells come first
    in a plan; a transfer cell is kept only when its pre-training is done, kept too, or (``slurm``)
    queued (:func:`waiting_on`).
    """
    job_waiting = job_waiting or slurm_jobs.job_waiting
    chosen = []
    for cell in plan.cells:
        cell_dir = Path(cell.work_dir)
        if is_done(cell_dir, cell.id):
            summary.already_done.append(cell.label)
            continue
        recorded = read_state(cell_dir)
        if lock_held(cell_dir) or (recorded.state == "running" and not recorded.interrupted):
            summary.running_elsewhere.append(cell.label)
            continue
        if recorded.state in ("submitted", "interrupted") and recorded.job_id and job_waiting(recorded.job_id):
            summary.queued.append(cell.label)
            continue
        if recorded.state == "failed" and recorded.attempts >= cell.max_attempts and not retry_failed:
            summary.exhausted.append(cell.label)
            continue
        chosen.append(cell)
    chosen_dirs = {cell.work_dir for cell in chosen}
    never = (lambda job: False)  # noqa: E731 - a local run cannot depend on a queued job
    return [cell for cell in chosen if waiting_on(cell, chosen_dirs, summary, job_waiting if slurm else never)]


def ready_stages(cells: list) -> tuple[list, list]:
    """The cells whose pre-training is done (or that have none), and the others."""
    first = [cell for cell in cells if cell.depends_on is None or is_done(Path(cell.depends_on))]
    return first, [cell for cell in cells if cell not in first]


def block_unready(cells: list) -> list[str]:
    """Record ``blocked`` every cell whose pre-training is not done; their labels."""
    blocked = []
    for cell in cells:
        if cell.depends_on is not None and not is_done(Path(cell.depends_on)):
            mark_blocked(Path(cell.work_dir), blocked_reason(Path(cell.depends_on)))
            blocked.append(cell.label)
    return blocked

