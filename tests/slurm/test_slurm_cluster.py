"""The SLURM executor against a real one-node SLURM cluster: submitit jobs and sbatch scripts."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from matrix_helpers import REPO, TINY_CLASSIFIER, cli
from multinode_helpers import job_processes, wait_for

from mae_transfer.data import make_dataset

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("slurm_cluster")]

CELL = f"  - {{task: inat2017, recipe: smoke, overrides: {TINY_CLASSIFIER}}}"
# one CPU per cell: the test node has two
MATRIX = """
name: t
work_root: {work_root}
backbones:
  - {{name: tiny, checkpoint: {checkpoint}}}
datasets:
  inat2017: {datasets}
resources: {{gpus_per_cell: 0, time_limit_hours: 0.25, cpus_per_gpu: 1}}
seeds: {seeds}
max_attempts: 2
tasks:
{tasks}
"""


def _matrix(tmp_path: Path, work_root: Path, seeds: int, outside: bool = False) -> Path:
    """A matrix of ``seeds`` tiny classification cells; ``outside``: its checkpoint and data live
    outside the work root (cell.py cannot pass a path with a space to --cfg-options)."""
    checkpoint, datasets = '"generate:vit_tiny_patch16"', "{generate: true}"
    if outside:
        import torch

        from mae_transfer.models import build_vit

        torch.manual_seed(0)
        torch.save({"model": build_vit("vit_tiny_patch16").state_dict()}, tmp_path / "tiny.pth")
        checkpoint = json.dumps(str(tmp_path / "tiny.pth"))
        datasets = "{root: " + json.dumps(str(make_dataset("inat2017", tmp_path / "inat2017"))) + "}"
    path = tmp_path / "m.yaml"
    path.write_text(MATRIX.format(work_root=json.dumps(str(work_root)), seeds=seeds, tasks=CELL,
                                  checkpoint=checkpoint, datasets=datasets))
    return path


def _cells(matrix: Path, env: dict[str, str]) -> list[dict]:
    planned = cli(["plan", str(matrix), "--json"], env)
    assert planned.returncode == 0, planned.stderr
    return json.loads(planned.stdout)["cells"]


def _job_state(job_id: str) -> str:
    shown = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True, timeout=30)
    match = re.search(r"JobState=(\w+)", shown.stdout)
    return match.group(1) if match else f"unknown ({shown.stderr.strip()})"


def test_run_with_the_slurm_executor_finishes_two_smoke_cells(tmp_path: Path, env) -> None:
    matrix = _matrix(tmp_path, tmp_path / "runs", seeds=2)
    run = cli(["run", str(matrix), "--executor", "slurm", "--cluster", "slurm", "--wait"], env, timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr[-4000:]
    assert "2 done, 0 failed" in run.stdout
    job_ids = re.findall(r"submitted as job (\d+_\d+)", run.stderr)
    assert len(job_ids) == 2, run.stderr[-3000:]
    assert [_job_state(job_id) for job_id in job_ids] == ["COMPLETED", "COMPLETED"]
    for cell in _cells(matrix, env):
        result = json.loads((Path(cell["work_dir"]) / "result.json").read_text())
        assert result["cell"]["seed"] == cell["seed"]
    again = cli(["run", str(matrix), "--executor", "slurm", "--cluster", "slurm", "--wait"], env)
    assert "nothing to do" in again.stdout


def test_sbatch_only_script_runs_under_real_sbatch_from_a_work_root_with_a_space(tmp_path: Path, env) -> None:
    work_root = tmp_path / "work root"
    matrix = _matrix(tmp_path, work_root, seeds=1, outside=True)
    written = cli(["run", str(matrix), "--executor", "slurm", "--sbatch-only"], env)
    assert written.returncode == 0, written.stdout + written.stderr
    script = work_root / "slurm" / "array-0.sbatch"
    submitted = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True, env=env,
                               cwd=str(tmp_path), timeout=30)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip().split(";")[0]
    deadline = time.monotonic() + 600
    while subprocess.run(["squeue", "-h", "-j", job_id], capture_output=True, text=True).stdout.strip():
        assert time.monotonic() < deadline, f"job {job_id} still queued or running after 10 minutes"
        time.sleep(2)
    log = work_root / "slurm" / "logs" / f"{job_id}_0.out"
    assert log.is_file(), sorted(p.name for p in (work_root / "slurm").rglob("*"))
    assert _job_state(f"{job_id}_0") == "COMPLETED", log.read_text()[-3000:]
    (cell,) = _cells(matrix, env)
    assert json.loads((Path(cell["work_dir"]) / "result.json").read_text())["cell"]["id"] == cell["id"]


def _kill_job_processes(job_number: str) -> None:
    """SIGKILL the job's processes (as the OOM killer or a node failure would): none can write a result.

    ``scancel`` sends SIGTERM first, which lets the cell record its failure and submitit write
    a result; this is the harder case.
    """
    wait_for(lambda: job_processes(job_number, "mae_transfer.train"), f"the training of job {job_number}", timeout=120)
    for pid in job_processes(job_number):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_wait_ends_when_a_job_is_killed_before_its_result(tmp_path: Path, env) -> None:
    """submitit asks sacct, which a cluster without accounting storage refuses: a cancelled job
    used to be waited for forever. Now --wait reports the cell failed, naming the job's state."""
    matrix = _matrix(tmp_path, tmp_path / "runs", seeds=1)
    matrix.write_text(matrix.read_text().replace("name: t\n", "name: cancelled\n"))
    command = [sys.executable, "-m", "mae_transfer.cli", "run", str(matrix), "--executor", "slurm", "--cluster",
               "slurm", "--wait"]
    process = subprocess.Popen(command, env=env, cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        deadline = time.monotonic() + 300
        while True:
            queued = subprocess.run(["squeue", "-h", "-n", "mae-transfer-cancelled", "-o", "%A %T"],
                                    capture_output=True, text=True).stdout.split()
            if queued[1:2] == ["RUNNING"]:
                break
            assert process.poll() is None and time.monotonic() < deadline, "the job never ran"
            time.sleep(1)
        _kill_job_processes(queued[0])
        out, err = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 1 and "0 done, 1 failed" in out, out + err[-3000:]
    assert re.search(r"job \d+(_\d+)? ended \((CANCELLED|FAILED)\) without a result", err), err[-3000:]


def _state(cell_dir: Path) -> dict:
    try:
        return json.loads((cell_dir / "state.json").read_text())
    except (OSError, ValueError):
        return {}


def test_submission_recorded_never_resubmitted_and_requeue_does_not_spend_an_attempt(tmp_path: Path, env) -> None:
    """Issue 12: job ids in state.json, a second run submits nothing, `scontrol requeue` (what
    preemption does) leaves the cell resumable with its attempt not counted, and it then finishes."""
    matrix = _matrix(tmp_path, tmp_path / "runs", seeds=1)
    long_run = ("{" + TINY_CLASSIFIER[1:-1] + ", train_cfg.max_epochs: 12, train_cfg.val_interval: 12, "
                "param_scheduler.1.end: 12}")
    matrix.write_text(matrix.read_text().replace("name: t\n", "name: requeue\n").replace(TINY_CLASSIFIER, long_run))
    (cell,) = _cells(matrix, env)
    cell_dir = Path(cell["work_dir"])
    submit = ["run", str(matrix), "--executor", "slurm", "--cluster", "slurm"]
    first = cli(submit, env)
    assert first.returncode == 0 and "1 submitted" in first.stdout, first.stdout + first.stderr[-3000:]
    (job_id,) = re.findall(r"submitted as job (\d+(?:_\d+)?)", first.stderr)
    assert _state(cell_dir)["job_id"] == job_id

    def jobs() -> list[str]:
        return subprocess.run(["squeue", "-h", "-n", "mae-transfer-requeue", "-o", "%i"], capture_output=True,
                              text=True).stdout.split()

    second = cli(submit, env)
    assert second.returncode == 0 and "nothing to do" in second.stdout, second.stdout + second.stderr[-2000:]
    assert ("queued as SLURM jobs" in second.stdout or "running in another process" in second.stdout), second.stdout
    assert len(jobs()) == 1, jobs()
    try:
        deadline = time.monotonic() + 400
        marker = cell_dir / "train" / "last_checkpoint"
        while not (marker.is_file() and marker.read_text().strip()):
            assert time.monotonic() < deadline, f"no checkpoint; job state {_job_state(job_id)}"
            time.sleep(1)
        assert _state(cell_dir)["state"] == "running" and _state(cell_dir)["job_id"] == job_id
        requeued = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True, timeout=30)
        assert requeued.returncode == 0, requeued.stderr
        deadline = time.monotonic() + 120
        while not any(h.get("interrupted") for h in _state(cell_dir).get("history", [])):
            assert time.monotonic() < deadline, _state(cell_dir)
            time.sleep(0.5)
        after = _state(cell_dir)
        assert after["history"][0]["interrupted"] == "SIGTERM" and after["history"][0]["attempt"] == 1
        third = cli(submit, env)  # the requeued job is pending again: nothing is submitted
        assert "nothing to do" in third.stdout and len(jobs()) == 1, third.stdout + str(jobs())
        deadline = time.monotonic() + 900
        while jobs():
            assert time.monotonic() < deadline, f"job {job_id} not finished after the requeue: {_job_state(job_id)}"
            time.sleep(2)
    finally:
        subprocess.run(["scancel", "-n", "mae-transfer-requeue"], check=False)
    final = _state(cell_dir)
    assert final["state"] == "done", final
    assert final["attempts"] == 1, final  # the preempted attempt is not counted
    assert json.loads((cell_dir / "result.json").read_text())["cell"]["id"] == cell["id"]
    log = (cell_dir / "log.txt").read_text()
    assert "training stopped by SIGTERM" in log and "resuming from checkpoint" in log
