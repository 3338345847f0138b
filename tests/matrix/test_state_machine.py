"""The cell state machine (`mae_transfer.matrix.run.state`): legal moves, refused ones, and what status concludes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mae_transfer.matrix.run.files import LOCK_NAME, STATE_NAME
from mae_transfer.matrix.run.state import (
    TRANSITIONS,
    CellBusy,
    CellState,
    IllegalTransition,
    cell_lock,
    mark_blocked,
    mark_finished,
    mark_interrupted,
    mark_running,
    mark_submitted,
    read_state,
    status,
    write_state,
)

CELL_ID = "0123456789abcdef"


@pytest.fixture()
def cell_dir(tmp_path: Path) -> Path:
    path = tmp_path / f"inat2017.smoke.finetune.tiny.s0-{CELL_ID[:10]}"
    path.mkdir()
    return path


def _write_valid_result(cell_dir: Path) -> None:
    (cell_dir / "result.json").write_text(json.dumps({
        "schema": 1, "cell": {"id": CELL_ID, "backbone": "tiny", "task": "inat2017", "recipe": "smoke", "seed": 0},
        "metrics": {"top1": 50.0}, "provenance": {}}))


def _state(cell_dir: Path) -> tuple[str, int]:
    recorded = read_state(cell_dir)
    return recorded.state, recorded.attempts


def test_the_transitions_the_executors_use(cell_dir: Path) -> None:
    mark_running(cell_dir, None)
    mark_finished(cell_dir, ok=False, error_tail="boom")
    assert _state(cell_dir) == ("failed", 1)
    mark_running(cell_dir, 10)  # the local executor's retry
    mark_interrupted(cell_dir, "SIGTERM")  # Ctrl-C or preemption: the attempt is given back
    assert _state(cell_dir) == ("interrupted", 1)
    mark_submitted(cell_dir, "7_0")  # SLURM resubmits it
    mark_running(cell_dir, 10)  # the job starts on a node
    assert _state(cell_dir) == ("running", 2) and read_state(cell_dir).resumed_from_iter == 10
    _write_valid_result(cell_dir)
    mark_finished(cell_dir, ok=True)
    assert status(cell_dir, CELL_ID).state == "done"
    other = cell_dir.parent / f"b-{CELL_ID[:10]}"
    mark_blocked(other, "waits on its pre-training")  # pending -> blocked: no attempt
    mark_submitted(other, "8_0")  # blocked -> submitted once the pre-training is done
    mark_interrupted(other, "SIGTERM")  # a job cancelled while queued
    assert _state(other) == ("interrupted", 0)


@pytest.mark.parametrize("start, move", [
    ("done", "running"), ("done", "failed"), ("done", "blocked"),
    ("running", "submitted"), ("running", "blocked"), ("running", "running"),
    ("pending", "done"), ("pending", "interrupted"), ("failed", "done"), ("blocked", "interrupted"),
])
def test_illegal_transitions_are_refused_and_change_nothing(cell_dir: Path, start: str, move: str) -> None:
    assert move not in TRANSITIONS[start]
    if start == "done":
        mark_running(cell_dir, None)
        _write_valid_result(cell_dir)
        mark_finished(cell_dir, ok=True)
    elif start != "pending":
        write_state(cell_dir, CellState(state=start, attempts=1, pid=os.getpid(), host=os.uname().nodename,
                                        started=time.time(), heartbeat=time.time()))
    before = (cell_dir / STATE_NAME).read_bytes() if (cell_dir / STATE_NAME).exists() else None
    moves = {"running": lambda: mark_running(cell_dir, None), "failed": lambda: mark_finished(cell_dir, ok=False),
             "done": lambda: mark_finished(cell_dir, ok=True), "blocked": lambda: mark_blocked(cell_dir, "x"),
             "submitted": lambda: mark_submitted(cell_dir, "1"), "interrupted": lambda: mark_interrupted(cell_dir, "x")}
    with pytest.raises(IllegalTransition, match=f"{cell_dir.name}: a cell that is {start} cannot become {move}"):
        moves[move]()
    after = (cell_dir / STATE_NAME).read_bytes() if (cell_dir / STATE_NAME).exists() else None
    assert after == before


def test_a_done_cell_runs_again_only_when_forced(cell_dir: Path) -> None:
    mark_running(cell_dir, None)
    _write_valid_result(cell_dir)
    mark_finished(cell_dir, ok=True)
    with pytest.raises(IllegalTransition, match="a cell that is done cannot become running"):
        mark_running(cell_dir, None)
    assert _state(cell_dir) == ("done", 1)
    assert mark_running(cell_dir, None, rerun=True).attempts == 2


def test_a_second_trainer_on_a_locked_cell_is_refused(cell_dir: Path) -> None:
    code = ("import fcntl, sys, time; h = open(sys.argv[1], 'a+'); fcntl.flock(h, fcntl.LOCK_EX); "
            "print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(cell_dir / LOCK_NAME)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(CellBusy, match="another trainer holds"):
            mark_running(cell_dir, None)
        with pytest.raises(CellBusy), cell_lock(cell_dir):
            pass
        assert not (cell_dir / STATE_NAME).exists()
    finally:
        holder.kill()
        holder.wait()
    with cell_lock(cell_dir):  # the lock's holder is this process now: it may start the attempt
        assert mark_running(cell_dir, None).state == "running"


def test_a_job_cancelled_while_pending_is_interrupted_not_submitted(cell_dir: Path) -> None:
    mark_submitted(cell_dir, "41")
    assert status(cell_dir, job_state=lambda job: "PENDING").state == "submitted"
    assert status(cell_dir, job_state=lambda job: "UNKNOWN").state == "submitted"  # scontrol cannot be asked
    cancelled = status(cell_dir, job_state=lambda job: "CANCELLED")
    assert cancelled.state == "interrupted" and "SLURM job 41 ended (CANCELLED) before the cell started" in cancelled.reason
    assert status(cell_dir, job_state=lambda job: None).state == "interrupted"  # slurmctld forgot it
    assert status(cell_dir).state == "submitted"  # nobody asked SLURM
    mark_submitted(cell_dir, "42")  # the next run submits it again: legal from interrupted
    assert read_state(cell_dir).job_id == "42"


@pytest.mark.parametrize("recorded", ["submitted", "interrupted", "running", "failed"])
def test_a_requeued_job_that_finished_is_done(cell_dir: Path, recorded: str) -> None:
    # the first run of the job was preempted (interrupted/failed/submitted again); the requeued one wrote the result
    write_state(cell_dir, CellState(state=recorded, attempts=1, job_id="43", host="node1", pid=1,
                                    heartbeat=time.time()))
    _write_valid_result(cell_dir)
    assert status(cell_dir, CELL_ID, job_state=lambda job: "COMPLETED").state == "done"


def test_status_concludes_beyond_the_file(cell_dir: Path) -> None:
    write_state(cell_dir, CellState(state="done", attempts=1))
    missing = status(cell_dir, CELL_ID)
    assert missing.state == "failed" and "recorded done, but its result is not valid" in missing.reason
    assert status(cell_dir, CELL_ID, validate=False).state == "done"
    write_state(cell_dir, CellState(state="running", attempts=1, pid=2 ** 22 + 3, host=os.uname().nodename,
                                    started=time.time(), heartbeat=time.time()))
    gone = status(cell_dir)
    assert gone.state == "interrupted" and f"pid {2 ** 22 + 3}" in gone.reason


@pytest.mark.parametrize("payload, expected, problem", [
    ({"state": "running", "pid": [1, 2], "heartbeat": "soon", "attempts": "2"},
     {"pid": None, "heartbeat": None, "attempts": 2}, "key 'pid': expected int, found [1, 2]"),
    ({"state": "failed", "attempts": -1, "history": "x", "error_tail": 5},
     {"attempts": 0, "history": [], "error_tail": "5"}, "key 'history': expected history"),
    ({"state": "exploded"}, {"state": "pending"}, "key 'state': expected one of pending"),
    (["not", "an", "object"], {"state": "pending"}, "expected a JSON object, found list"),
])
def test_wrong_types_are_repaired_with_a_message_naming_the_key(cell_dir: Path, payload, expected, problem) -> None:
    (cell_dir / STATE_NAME).write_text(json.dumps(payload))
    recorded = read_state(cell_dir)
    assert {key: getattr(recorded, key) for key in expected} == expected
    assert any(problem in message and str(cell_dir / STATE_NAME) in message for message in recorded.problems)
    assert status(cell_dir).state in ("pending", "running", "failed", "interrupted")  # no crash
