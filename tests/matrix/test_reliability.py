"""Issue 12 (reliability): results, status, locks, heartbeats, checkpoints, overrides, hostile input.

The fast cases: no training. Real processes hold the cell lock, the CLI runs in subprocesses,
a full or read-only filesystem is a real tmpfs (skipped where it cannot be mounted).
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from matrix_helpers import TINY_CLASSIFIER, cli, matrix_text

from mae_transfer.leaderboard.collect import collect
from mae_transfer.matrix.run.cell import run_cell, train_command
from mae_transfer.matrix.doctor import run_doctor
from mae_transfer.matrix.plan.overrides import override_key_problem
from mae_transfer.matrix.run.executors import RunSummary
from mae_transfer.matrix.plan.planner import Cell, plan_matrix
from mae_transfer.matrix.run.result import ResultError, validate_result
from mae_transfer.matrix.spec.matrix_spec import SpecError, load_spec
from mae_transfer.matrix.run.files import LOCK_NAME
from mae_transfer.matrix.run.resume import usable_checkpoint
from mae_transfer.matrix.run.state import CellBusy, CellState, is_done, read_state, select, write_state
from mae_transfer.records import atomic_write_json as write_json_atomic

CELL = f"  - {{task: inat2017, recipe: smoke, overrides: {TINY_CLASSIFIER}}}"


@pytest.fixture()
def plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MAE_TRANSFER_CACHE", str(tmp_path / "cache"))
    matrix = tmp_path / "m.yaml"
    matrix.write_text(matrix_text(CELL, seeds="2"))
    planned = plan_matrix(load_spec(matrix))
    for cell in planned.cells:
        Path(cell.work_dir).mkdir(parents=True)
        write_json_atomic(Path(cell.work_dir) / "cell.json", cell.to_json())
    return planned


def _result(cell: Cell, **metrics) -> dict:
    return {"schema": 1, "cell": {"id": cell.id, "backbone": cell.backbone, "task": cell.task, "recipe": cell.recipe,
                                  "seed": cell.seed},
            "metrics": metrics or {"top1": 50.0}, "raw_metrics": {"accuracy/top1": 50.0},
            "provenance": {"eval_mode": "ss", "checkpoint_policy": "last"}}


@pytest.mark.parametrize("metrics, key", [
    ({"top1": math.nan}, "metrics.top1"), ({"top1": math.inf}, "metrics.top1"),
    ({"top1": 250.0}, "metrics.top1"), ({"top1": -1.0}, "metrics.top1")])
def test_non_finite_or_out_of_range_metric_is_refused_by_run_status_and_leaderboard(plan, metrics, key) -> None:
    cell = plan.cells[0]
    path = Path(cell.work_dir) / "result.json"
    path.write_text(json.dumps(_result(cell, **metrics)))  # json writes NaN/Infinity literals
    with pytest.raises(ResultError, match=rf"{path}: key '{key}'"):
        validate_result(path, cell.id)
    assert not is_done(Path(cell.work_dir), cell.id)  # run and status
    summary = RunSummary()
    assert cell in select(plan, retry_failed=False, summary=summary) and not summary.already_done
    outcome = next(o for o in collect(plan).outcomes if o.cell.id == cell.id)  # leaderboard
    assert outcome.status == "failed"


def test_non_finite_raw_metric_is_refused(plan) -> None:
    cell = plan.cells[0]
    payload = _result(cell)
    payload["raw_metrics"] = {"loss": math.nan}
    path = Path(cell.work_dir) / "result.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(ResultError, match="raw_metrics.loss.*not a finite number"):
        validate_result(path)


def test_result_copied_from_another_cell_is_refused(plan) -> None:
    first, second = plan.cells
    (Path(first.work_dir) / "result.json").write_text(json.dumps(_result(first)))
    copied = Path(second.work_dir) / "result.json"
    copied.write_text(json.dumps(_result(first)))
    assert is_done(Path(first.work_dir), first.id)
    with pytest.raises(ResultError, match=rf"cell.id.*another cell's result.*{second.id}"):
        validate_result(copied)  # the id in cell.json
    assert not is_done(Path(second.work_dir), second.id)
    (Path(second.work_dir) / "cell.json").unlink()
    with pytest.raises(ResultError, match="does not match the directory"):
        validate_result(copied)  # the directory name alone
    statuses = {o.cell.id: o.status for o in collect(plan).outcomes}
    assert statuses == {first.id: "done", second.id: "failed"}


def test_status_is_not_done_when_result_is_corrupt_or_deleted(plan, tmp_path: Path) -> None:
    first, second = plan.cells
    for cell in plan.cells:
        write_state(Path(cell.work_dir), CellState(state="done", attempts=1))
    (Path(first.work_dir) / "result.json").write_text("{corrupt")
    env = {**__import__("os").environ, "MAE_TRANSFER_CACHE": str(tmp_path / "cache")}
    shown = cli(["status", str(plan.spec.path), "--json"], env)
    rows = {row["id"]: row for row in json.loads(shown.stdout)}
    assert rows[first.id]["state"] == "failed" and "not valid JSON" in rows[first.id]["error_tail"]
    assert rows[second.id]["state"] == "failed" and "cannot read" in rows[second.id]["error_tail"]
    assert shown.returncode == 1


def test_running_cell_with_a_stale_heartbeat_on_another_host_is_retried(plan, monkeypatch) -> None:
    import mae_transfer.matrix.run.state as state_module

    stale, fresh = plan.cells
    now = time.time()
    write_state(Path(stale.work_dir), CellState(state="running", attempts=1, pid=1, host="elsewhere.example",
                                                started=now - 7200, heartbeat=now - 3600))
    write_state(Path(fresh.work_dir), CellState(state="running", attempts=1, pid=1, host="elsewhere.example",
                                                started=now - 7200, heartbeat=now - 5))
    monkeypatch.setattr(state_module, "STALE_SECONDS", 600.0)
    assert read_state(Path(stale.work_dir)).interrupted and not read_state(Path(fresh.work_dir)).interrupted
    summary = RunSummary()
    assert select(plan, retry_failed=False, summary=summary) == [stale]
    assert summary.running_elsewhere == [fresh.label]
    statuses = {o.cell.id: o.status for o in collect(plan).outcomes}
    assert statuses == {stale.id: "interrupted", fresh.id: "running"}


@contextlib.contextmanager
def _lock_holder(cell_dir: Path):
    """Another process holding the cell's lock, as a trainer of it would."""
    code = ("import fcntl,sys,time; h=open(sys.argv[1],'a+'); fcntl.flock(h,fcntl.LOCK_EX); print('held',flush=True); "
            "time.sleep(120)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(cell_dir / LOCK_NAME)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.wait()


def test_second_trainer_of_a_cell_is_refused_and_changes_nothing(plan) -> None:
    cell = plan.cells[0]
    cell_dir = Path(cell.work_dir)
    write_state(cell_dir, CellState(state="running", attempts=1, pid=12345, host="node7", job_id="99_0",
                                    started=time.time(), heartbeat=time.time()))
    before = (cell_dir / "state.json").read_bytes()
    with _lock_holder(cell_dir):
        with pytest.raises(CellBusy, match=r"another trainer holds .*\.cell\.lock .*pid 12345 on node7, job 99_0"):
            run_cell(cell_dir)
        assert (cell_dir / "state.json").read_bytes() == before
        assert not (cell_dir / "log.txt").exists() and not (cell_dir / "train").exists()
        summary = RunSummary()
        write_state(cell_dir, CellState(state="interrupted", attempts=1))  # even a resumable one: locked
        assert cell not in select(plan, retry_failed=False, summary=summary)
        assert cell.label in summary.running_elsewhere


def test_truncated_latest_checkpoint_falls_back_to_the_previous_one(tmp_path: Path) -> None:
    train = tmp_path / "train"
    train.mkdir()
    for epoch in (1, 2, 3):
        torch.save({"meta": {"epoch": epoch}, "state_dict": {"w": torch.randn(256)}}, train / f"epoch_{epoch}.pth")
    data = (train / "epoch_3.pth").read_bytes()
    (train / "epoch_3.pth").write_bytes(data[: len(data) // 2])
    (train / "last_checkpoint").write_text(str(train / "epoch_3.pth"))
    found, skipped = usable_checkpoint(train)
    assert found == (train / "epoch_2.pth", 2)
    assert len(skipped) == 1 and str(train / "epoch_3.pth") in skipped[0] and "unreadable" in skipped[0]
    (train / "epoch_2.pth").write_bytes(b"")
    found, skipped = usable_checkpoint(train)
    assert found == (train / "epoch_1.pth", 1) and "empty file" in skipped[1]


def test_empty_last_checkpoint_pointer_falls_back_to_the_newest_numbered_checkpoint(tmp_path: Path) -> None:
    train = tmp_path / "train"
    train.mkdir()
    for epoch in (1, 2):
        torch.save({"w": torch.randn(8)}, train / f"epoch_{epoch}.pth")
    assert usable_checkpoint(train) == (None, [])  # no pointer: mmengine never recorded a checkpoint
    (train / "last_checkpoint").write_text("")  # killed while mmengine rewrote it after a save
    found, skipped = usable_checkpoint(train)
    assert found == (train / "epoch_2.pth", 2) and "last_checkpoint is empty" in skipped[0]


def test_fallback_checkpoint_is_passed_to_train_py(plan) -> None:
    command = train_command(plan.cells[0], "none", 1, resume=Path("/x/epoch_2.pth"))
    assert command[command.index("--resume") + 1] == "/x/epoch_2.pth"
    assert "--resume" in train_command(plan.cells[0], "none", 1, resume=True)
    assert "--resume" not in train_command(plan.cells[0], "none", 1, resume=None)


def test_override_key_typo_fails_doctor_naming_the_key_and_the_fix(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MAE_TRANSFER_CACHE", str(tmp_path / "cache"))
    cfg = {"optim_wrapper": {"type": "OptimWrapper", "optimizer": {"type": "AdamW", "lr": 1e-3}},
           "train_cfg": {"max_epochs": 2}, "param_scheduler": [{"type": "A"}, {"type": "B", "end": 2}]}
    assert override_key_problem(cfg, "optim_wrapper.optimizer.lr") is None
    assert override_key_problem(cfg, "optim_wrapper.optimizer.betas") is None  # a kwarg left at its default
    assert "did you mean optim_wrapper.optimizer.lr?" in override_key_problem(cfg, "optim_wrapper.optimizer.lrr")
    assert override_key_problem(cfg, "param_scheduler.1.end") is None
    assert override_key_problem(cfg, "randomness.seed") is None  # the runner reads it with a default
    assert "did you mean optim_wrapper?" in override_key_problem(cfg, "optim_wraper.optimizer.lr")
    assert "did you mean train_cfg.max_epochs?" in override_key_problem(cfg, "train_cfg.max_epoch")
    assert "not an index" in override_key_problem(cfg, "param_scheduler.5.end")
    matrix = tmp_path / "m.yaml"
    matrix.write_text(matrix_text("  - {task: inat2017, recipe: smoke, overrides: {optim_wraper.optimizer.lr: 0.5}}"))
    report = run_doctor(plan_matrix(load_spec(matrix)))
    assert not report.ok
    rendered = report.render()
    assert "override optim_wraper.optimizer.lr: 'optim_wraper' does not exist" in rendered
    assert "did you mean optim_wrapper?" in rendered and "all checks passed" not in rendered
    assert "treat a matrix file as code" in rendered


def test_run_refuses_a_cell_with_an_override_typo_before_training(tmp_path: Path, env) -> None:
    matrix = tmp_path / "m.yaml"
    matrix.write_text(matrix_text(
        "  - {task: inat2017, recipe: smoke, overrides: {optim_wraper.optimizer.lr: 0.5, "
        + TINY_CLASSIFIER[1:-1] + "}}"))
    ran = cli(["run", str(matrix)], env)
    assert ran.returncode == 1, ran.stdout + ran.stderr
    (row,) = json.loads(cli(["status", str(matrix), "--json"], env).stdout)
    assert row["state"] == "failed" and "did you mean optim_wrapper?" in row["error_tail"]
    cell_dir = Path(json.loads(cli(["plan", str(matrix), "--json"], env).stdout)["cells"][0]["work_dir"])
    assert not (cell_dir / "train").exists()


def test_duplicate_yaml_keys_and_trailing_newline_names_are_refused(tmp_path: Path) -> None:
    matrix = tmp_path / "m.yaml"
    matrix.write_text(matrix_text(CELL, extra="max_attempts: 5"))  # matrix_text already sets max_attempts
    with pytest.raises(SpecError, match=r"duplicate key 'max_attempts' \(first at line \d+\)"):
        load_spec(matrix)
    matrix.write_text(matrix_text(CELL).replace("name: t\n", 'name: "t\\n"\n'))
    with pytest.raises(SpecError, match=r"name: 't\\n' is not allowed"):
        load_spec(matrix)


def test_non_utf8_matrix_and_references_are_one_line_errors(tmp_path: Path, env) -> None:
    matrix = tmp_path / "m.yaml"
    matrix.write_bytes(matrix_text(CELL).encode() + b"# caf\xe9\n")
    shown = cli(["plan", str(matrix)], env)
    assert shown.returncode == 2 and "not UTF-8 text" in shown.stderr and "Traceback" not in shown.stderr
    matrix.write_text(matrix_text(CELL, extra="references: [refs.yaml]"))
    (tmp_path / "refs.yaml").write_bytes(b"rows: []\n# \xff\n")
    board = cli(["leaderboard", str(matrix)], env)
    assert board.returncode == 2 and "refs.yaml" in board.stderr and "not UTF-8" in board.stderr
    assert "Traceback" not in board.stderr


@pytest.fixture()
def tmpfs(tmp_path: Path):
    """A 256 KiB tmpfs (root only: skipped where it cannot be mounted)."""
    mount = tmp_path / "fs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_read_only_work_root_is_a_one_line_error(tmp_path: Path, tmpfs: Path, env) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    matrix = tmp_path / "m.yaml"
    matrix.write_text(matrix_text(CELL, extra=f"work_root: {json.dumps(str(tmpfs / 'runs'))}"))
    ran = cli(["run", str(matrix)], env)
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert "Read-only file system" in ran.stderr and str(tmpfs / "runs") in ran.stderr
    assert "Traceback" not in ran.stderr


def test_full_disk_leaves_no_tmp_file_and_no_running_cell(plan, tmpfs: Path) -> None:
    cell = plan.cells[0]
    cell_dir = tmpfs / Path(cell.work_dir).name
    cell_dir.mkdir()
    write_json_atomic(cell_dir / "cell.json", cell.to_json())
    write_state(cell_dir, CellState(state="interrupted", attempts=1))
    with contextlib.suppress(OSError), (tmpfs / "filler").open("wb") as filler:
        while True:
            filler.write(b"\0" * 4096)
            filler.flush()
    with pytest.raises(OSError) as raised:
        write_json_atomic(cell_dir / "state.json", {"big": "x" * 100000})
    assert raised.value.errno == errno.ENOSPC
    assert not run_cell(cell_dir)
    assert read_state(cell_dir).state == "interrupted"  # never left "running"
    assert sorted(p.name for p in cell_dir.iterdir() if p.name.endswith(".tmp")) == []


def test_a_failure_on_a_full_disk_is_recorded_for_status(plan, tmpfs: Path) -> None:
    from mae_transfer.matrix.run.state import reserve_space, status

    cell = plan.cells[0]
    cell_dir = tmpfs / Path(cell.work_dir).name
    cell_dir.mkdir()
    write_json_atomic(cell_dir / "cell.json", cell.to_json())
    write_state(cell_dir, CellState(state="interrupted", attempts=1))
    reserve_space(cell_dir)  # as the executors' prepare step keeps it
    with contextlib.suppress(OSError), (tmpfs / "filler").open("wb") as filler:
        while True:
            filler.write(b"\0" * 4096)
            filler.flush()
    assert not run_cell(cell_dir)
    shown = status(cell_dir, cell.id)
    assert shown.state == "failed" and "No space left on device" in shown.reason, shown
    assert sorted(p.name for p in cell_dir.iterdir() if p.name.endswith(".tmp")) == []


def test_slurm_submission_record_stops_a_resubmission(plan, monkeypatch) -> None:
    import mae_transfer.matrix.run.state as state_module

    queued, ended = plan.cells
    write_state(Path(queued.work_dir), CellState(state="submitted", job_id="41_0", started=time.time()))
    write_state(Path(ended.work_dir), CellState(state="submitted", job_id="42_0", started=time.time()))
    states = {"41_0": "PENDING", "42_0": "CANCELLED"}
    monkeypatch.setattr("mae_transfer.matrix.run.slurm_jobs.slurm_job_state", lambda job: states[job])
    summary = RunSummary()
    assert state_module.select(plan, retry_failed=False, summary=summary) == [ended]
    assert summary.queued == [queued.label]


def test_host_field_is_this_host_when_running(plan) -> None:
    from mae_transfer.matrix.run.state import mark_running

    state = mark_running(Path(plan.cells[0].work_dir), None)
    assert state.host == socket.gethostname() and state.heartbeat == state.started and state.attempts == 1


def test_generated_checkpoint_is_regenerated_when_its_depth_changes(tmp_path: Path) -> None:
    from mae_transfer.checkpoints.reader import read_checkpoint
    from mae_transfer.matrix.plan.backbones import write_generated_checkpoint

    out = tmp_path / "tiny.pth"

    def blocks() -> int:
        keys = read_checkpoint(out).obj["model"]
        return len({k.split(".")[1] for k in keys if k.startswith("blocks.")})

    write_generated_checkpoint("vit_tiny_patch16", out, depth=2)
    assert blocks() == 2
    stamp = out.stat().st_mtime_ns
    write_generated_checkpoint("vit_tiny_patch16", out, depth=2)
    assert out.stat().st_mtime_ns == stamp  # same recipe: reused
    write_generated_checkpoint("vit_tiny_patch16", out, depth=3)
    assert blocks() == 3
