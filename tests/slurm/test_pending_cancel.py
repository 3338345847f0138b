"""A multi-node job cancelled while it waits for nodes: its cell is interrupted (not 'submitted' forever),
and the next run submits it again (issue 19 item 8, the SLURM side). No training: the job never starts."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from matrix_helpers import TINY_CLASSIFIER, cli
from multinode_helpers import read_json, scontrol_job, wait_for

pytestmark = pytest.mark.usefixtures("two_nodes")

MATRIX = """
name: pendingcancel
work_root: {work_root}
backbones:
  - {{name: tiny, checkpoint: "generate:vit_tiny_patch16"}}
datasets:
  inat2017: {{generate: true}}
resources: {{gpus_per_cell: 0, nodes: 2, time_limit_hours: 0.25, cpus_per_gpu: 1}}
tasks:
  - {{task: inat2017, recipe: smoke, overrides: {tiny}}}
"""


def _submitted(run: subprocess.CompletedProcess) -> str:
    assert run.returncode == 0 and "1 submitted" in run.stdout, run.stdout + run.stderr[-3000:]
    (job_id,) = re.findall(r"submitted as job (\d+_\d+)", run.stderr)
    return job_id


def _cancel(job_id: str) -> None:
    """scancel a pending array task; slurmctld then shows it CANCELLED, or (22.05, the array's only
    task) no longer finds it."""
    subprocess.run(["scancel", job_id], check=True, timeout=60)
    wait_for(lambda: scontrol_job(job_id).get("JobState", "CANCELLED") == "CANCELLED", f"job {job_id} cancelled",
             timeout=60)


def test_a_job_cancelled_while_pending_leaves_its_cell_interrupted_and_resubmittable(tmp_path: Path, env) -> None:
    matrix = tmp_path / "m.yaml"
    matrix.write_text(MATRIX.format(work_root=json.dumps(str(tmp_path / "runs")), tiny=TINY_CLASSIFIER))
    # both nodes taken: the cell's job waits for resources
    blocker = subprocess.run(["sbatch", "--parsable", "-N2", "--exclusive", "-t", "10", "-J", "mae-transfer-blocker",
                              "-o", "/dev/null", "--wrap", "sleep 600"], capture_output=True, text=True, timeout=60)
    assert blocker.returncode == 0, blocker.stderr
    blocker_id = blocker.stdout.strip().split(";")[0]
    try:
        wait_for(lambda: scontrol_job(blocker_id).get("JobState") == "RUNNING", "the blocking job to run", timeout=120)
        first = _submitted(cli(["run", str(matrix), "--executor", "slurm"], env))
        assert scontrol_job(first)["JobState"] == "PENDING"
        (cell_dir,) = (tmp_path / "runs" / "cells").iterdir()
        assert read_json(cell_dir / "state.json")["state"] == "submitted"
        queued = cli(["run", str(matrix), "--executor", "slurm"], env)  # queued: not submitted twice
        assert "1 queued as SLURM jobs" in queued.stdout, queued.stdout + queued.stderr[-2000:]

        _cancel(first)
        (row,) = json.loads(cli(["status", str(matrix), "--json"], env).stdout)
        assert row["state"] == "interrupted" and row["job_id"] == first, row
        assert re.search(rf"SLURM job {first} ended \((CANCELLED|no longer known)\) before the cell started; the next "
                         "run submits it again", row["error_tail"]), row
        again = _submitted(cli(["run", str(matrix), "--executor", "slurm"], env))
        assert again != first and read_json(cell_dir / "state.json")["job_id"] == again
        assert read_json(cell_dir / "state.json")["attempts"] == 0  # never ran: no attempt spent
    finally:
        subprocess.run(["scancel", "-n", "mae-transfer-pendingcancel"], check=False)
        subprocess.run(["scancel", blocker_id], check=False)
