"""doctor, plan and run with ``--executor slurm`` ask the real cluster (sinfo) before anything runs (issue 23 item 5).

A missing partition, a cell asking for more nodes than the partition has, and a partition name
with a newline: each is one clear message naming the matrix file and the key, never a
traceback, from doctor, plan and run alike; run writes no script and submits no job.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from matrix_helpers import TINY_CLASSIFIER, cli

pytestmark = pytest.mark.usefixtures("two_nodes")

# one cell that fits the two-node test cluster, one that asks for 4 nodes, one for a partition it lacks
MATRIX = """
name: doctored
work_root: {work_root}
backbones:
  - {{name: tiny, checkpoint: "generate:vit_tiny_patch16"}}
datasets:
  inat2017: {{generate: true}}
  inat2018: {{generate: true}}
  places365: {{generate: true}}
resources: {{gpus_per_cell: 0, nodes: 2, time_limit_hours: 0.25, cpus_per_gpu: 1}}
tasks:
  - {{task: inat2017, recipe: smoke, overrides: {tiny}}}
  - {{task: inat2018, recipe: smoke, overrides: {tiny}, resources: {{gpus_per_cell: 0, nodes: 4, cpus_per_gpu: 1}}}}
  - {{task: places365, recipe: smoke, overrides: {tiny}, resources: {{gpus_per_cell: 0, nodes: 2, cpus_per_gpu: 1,
      partition: {partition}}}}}
"""


def _matrix(tmp_path: Path, partition: str) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(MATRIX.format(work_root=json.dumps(str(tmp_path / "runs")), tiny=TINY_CLASSIFIER,
                                  partition=partition))
    return path


def _queued() -> list[str]:
    return subprocess.run(["squeue", "-h", "-n", "mae-transfer-doctored", "-o", "%i"], capture_output=True,
                          text=True, timeout=30).stdout.split()


def test_doctor_plan_and_run_refuse_what_the_cluster_cannot_hold(tmp_path: Path, env) -> None:
    matrix = _matrix(tmp_path, "nowhere")
    missing = f"{matrix}: tasks[2].resources.partition='nowhere': no partition 'nowhere' on this cluster (sinfo lists: debug)"
    too_many = (f"{matrix}: tasks[1].resources.nodes=4: partition 'debug' has 2 node(s) with at least 0 GPU(s) and "
                "1 CPU(s) (2 node(s) in all); a cell can ask for at most 2 (cell inat2018.smoke.finetune.tiny.s0)")

    doctor = cli(["doctor", str(matrix), "--executor", "slurm", "--json"], env)
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr[-3000:]
    cluster = [(c["level"], c["message"]) for c in json.loads(doctor.stdout)["checks"] if c["topic"] == "cluster"]
    assert cluster == [
        ("ok", "partition 'debug' (default): 2 node(s), 2 CPU(s) and 0 GPU(s) per node, no time limit"),
        ("fail", too_many),
        ("fail", missing + " (cell places365.smoke.finetune.tiny.s0)"),
    ], cluster
    assert not [c for c in json.loads(doctor.stdout)["checks"] if c["topic"] == "gpus"]  # this machine's GPUs: moot

    plan = cli(["plan", str(matrix), "--executor", "slurm", "--json"], env)
    assert plan.returncode == 1 and json.loads(plan.stdout)["cluster_refused"] == [too_many, missing +
                                                                                   " (cell places365.smoke.finetune.tiny.s0)"]
    for extra in (["--sbatch-only"], ["--wait"]):
        run = cli(["run", str(matrix), "--executor", "slurm", *extra], env)
        assert run.returncode == 2, run.stdout + run.stderr
        assert f"error: {too_many}" in run.stderr and f"error: {missing}" in run.stderr, run.stderr
        assert "Traceback" not in run.stderr
    assert not (tmp_path / "runs").exists() and not _queued()  # no script, no cell dir, no job


def test_a_partition_name_with_a_newline_is_one_message_naming_the_key(tmp_path: Path, env) -> None:
    matrix = _matrix(tmp_path, '"debug\\nrm -rf ~"')
    doctor = cli(["doctor", str(matrix), "--executor", "slurm"], env)
    run = cli(["run", str(matrix), "--executor", "slurm", "--sbatch-only"], env)
    for ran in (doctor, run):
        assert ran.returncode in (1, 2), ran.stdout + ran.stderr
        said = ran.stdout + ran.stderr
        assert "tasks[2].resources.partition" in said and "Traceback" not in said, said
    assert not (tmp_path / "runs" / "slurm").exists() and not _queued()
