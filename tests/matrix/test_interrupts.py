"""Issue 12 on real training: Ctrl-C is not a failed attempt; one trainer per cell across entry points."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from matrix_helpers import REPO, TINY_SHAPE, cli, matrix_text

pytestmark = pytest.mark.slow

LONG = "{" + TINY_SHAPE + ", train_cfg.max_epochs: 40, train_cfg.val_interval: 40, param_scheduler.1.end: 40}"


def _matrix(tmp_path: Path) -> Path:
    matrix = tmp_path / "m.yaml"
    matrix.write_text(matrix_text(f"  - {{task: inat2017, recipe: smoke, overrides: {LONG}}}")
                      .replace("max_attempts: 3", "max_attempts: 2"))
    return matrix


def _cell_dir(matrix: Path, env) -> Path:
    return Path(json.loads(cli(["plan", str(matrix), "--json"], env).stdout)["cells"][0]["work_dir"])


def _as_a_foreground_job() -> None:
    """In the child before exec: SIGINT at its default, as in a terminal's foreground job."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for_checkpoint(process: subprocess.Popen, cell_dir: Path, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    marker = cell_dir / "train" / "last_checkpoint"
    while not (marker.is_file() and marker.read_text().strip()):
        assert process.poll() is None, "the run ended before it could be interrupted"
        assert time.time() < deadline, "no checkpoint within the timeout"
        time.sleep(0.2)


def test_ctrl_c_twice_does_not_spend_attempts_and_the_cell_resumes(tmp_path: Path, env) -> None:
    matrix = _matrix(tmp_path)
    matrix.write_text(matrix.read_text().replace("train_cfg.max_epochs: 40", "train_cfg.max_epochs: 10")
                      .replace("val_interval: 40", "val_interval: 10").replace("end: 40", "end: 10"))
    cell_dir = _cell_dir(matrix, env)
    for round_ in (1, 2):
        # the terminal's Ctrl-C: SIGINT to the whole foreground process group. A terminal's foreground
        # job starts with SIGINT at its default; a test run started in the background of a script
        # inherits it ignored (POSIX), and Python then never raises KeyboardInterrupt
        run = subprocess.Popen([sys.executable, "-m", "mae_transfer.cli", "run", str(matrix)], env=env, cwd=str(REPO),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                               preexec_fn=_as_a_foreground_job)
        _wait_for_checkpoint(run, cell_dir)
        os.killpg(run.pid, signal.SIGINT)
        out, err = run.communicate(timeout=120)
        assert run.returncode == 130, out + err[-3000:]
        assert "stay resumable" in err and "Traceback" not in err, err[-3000:]
        state = json.loads((cell_dir / "state.json").read_text())
        assert state["state"] == "interrupted" and state["attempts"] == 0, state
        assert [h.get("interrupted") for h in state["history"]] == ["SIGINT"] * round_
        (row,) = json.loads(cli(["status", str(matrix), "--json"], env).stdout)
        assert row["state"] == "interrupted"
        if round_ == 1:
            (cell_dir / "train" / "last_checkpoint").unlink()  # round 2 trains from the start again
    finished = cli(["run", str(matrix)], env, timeout=900)
    assert finished.returncode == 0, finished.stdout + finished.stderr[-3000:]
    state = json.loads((cell_dir / "state.json").read_text())
    assert state["state"] == "done" and state["attempts"] == 1
    assert "resuming from checkpoint" in (cell_dir / "log.txt").read_text().rsplit("attempt 1 of cell", 1)[1]
    assert json.loads((cell_dir / "result.json").read_text())["cell"]["id"] == json.loads(
        (cell_dir / "cell.json").read_text())["id"]


def test_slurm_entry_point_and_local_run_never_train_one_cell_at_once(tmp_path: Path, env) -> None:
    matrix = _matrix(tmp_path)
    # one CPU per process: `--sbatch-only` refuses what the partition of a cluster that is up
    # (CI's two-node one, 2 CPUs per node) cannot hold
    matrix.write_text(matrix.read_text().replace("train_cfg.max_epochs: 40", "train_cfg.max_epochs: 6")
                      .replace("val_interval: 40", "val_interval: 6").replace("end: 40", "end: 6")
                      .replace("gpus_per_cell: 0,", "gpus_per_cell: 0, cpus_per_gpu: 1,"))
    cell_dir = _cell_dir(matrix, env)
    assert cli(["run", str(matrix), "--sbatch-only", "--executor", "slurm"], env).returncode == 0  # writes cell.json
    # what a SLURM job runs on its node
    job = subprocess.Popen([sys.executable, "-m", "mae_transfer.matrix.run.cell", str(cell_dir)], env=env, cwd=str(REPO),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for_checkpoint(job, cell_dir)
        local = cli(["run", str(matrix)], env)
        assert local.returncode == 0, local.stdout + local.stderr[-2000:]
        assert "1 running in another process" in local.stdout, local.stdout
        # the cell runner itself (what a second SLURM job would run) refuses too
        second = subprocess.run([sys.executable, "-m", "mae_transfer.matrix.run.cell", str(cell_dir)], env=env,
                                cwd=str(REPO), capture_output=True, text=True, timeout=120)
        assert second.returncode == 3 and "another trainer holds" in second.stderr, second.stderr[-2000:]
        assert job.wait(timeout=900) == 0, job.stdout.read()[-3000:]
    finally:
        if job.poll() is None:
            job.kill()
    state = json.loads((cell_dir / "state.json").read_text())
    assert state["state"] == "done" and state["attempts"] == 1 and len(state["history"]) == 1
    log = (cell_dir / "log.txt").read_text()
    assert log.count("attempt 1 of cell") == 1 and "attempt 2" not in log
    again = cli(["run", str(matrix)], env)
    assert "nothing to do: 1 of 1 cells already finished" in again.stdout
