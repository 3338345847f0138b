"""Helpers of the multi-node tests: the matrix of three smoke cells, SLURM job queries, the job's processes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from matrix_helpers import cli

# Three smoke cells, each short enough for CI, deterministic (bit-equal resumption, as
# tests/matrix/test_fault_injection.py), logging the loss at every iteration: classification 3
# epochs (8 iterations each, a checkpoint and a validation each epoch), COCO Mask R-CNN and
# ADE20K UperNet 8 iterations (a checkpoint every 4, a validation at the end). The COCO cell keeps
# every detection (score threshold 0.05 -> 0): after 8 iterations the tiny detector's scores can all
# sit below 0.05 on one machine's numerics, and a validation without a detection has no metrics.
CLASSIFICATION = ("{task: inat2017, recipe: smoke, overrides: {train_cfg.max_epochs: 3, train_cfg.val_interval: 1, "
                  "param_scheduler.1.end: 3, randomness.deterministic: true}}")
COCO = ("{task: coco-maskrcnn, recipe: smoke, overrides: {train_cfg.max_iters: 8, train_cfg.val_interval: 8, "
        "param_scheduler.0.end: 2, param_scheduler.1.begin: 2, param_scheduler.1.end: 8, "
        "default_hooks.checkpoint.interval: 4, default_hooks.logger.interval: 1, randomness.deterministic: true, "
        "model.test_cfg.rcnn.score_thr: 0.0}}")
ADE20K = ("{task: ade20k-upernet, recipe: smoke, overrides: {train_cfg.max_iters: 8, train_cfg.val_interval: 8, "
          "param_scheduler.0.end: 2, param_scheduler.1.begin: 2, param_scheduler.1.end: 8, "
          "default_hooks.checkpoint.interval: 4, default_hooks.logger.interval: 1, randomness.deterministic: true}}")

MATRIX = """
name: {name}
work_root: {work_root}
backbones:
  - {{name: tiny, checkpoint: "generate:vit_tiny_patch16", depth: 4}}
datasets:
  inat2017: {{generate: true}}
  coco: {{generate: true}}
  ade20k: {{generate: true}}
resources: {resources}
max_attempts: 1
max_parallel: 3
tasks:
{tasks}
"""
# 2 nodes x 1 CPU process; 1 node x 2 processes (the same world size and seeds, another cell id)
TWO_NODES = "{gpus_per_cell: 0, nodes: 2, cpus_per_gpu: 1, time_limit_hours: 0.25}"
ONE_NODE_TWO_PROCESSES = "{gpus_per_cell: 2, nodes: 1, cpus_per_gpu: 1, time_limit_hours: 0.25}"


def write_matrix(folder: Path, name: str, resources: str, tasks: tuple[str, ...]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(MATRIX.format(name=name, work_root=json.dumps(str(folder / "runs")), resources=resources,
                                  tasks="\n".join(f"  - {task}" for task in tasks)))
    return path


def planned_cells(matrix: Path, env: dict[str, str]) -> dict[str, dict]:
    """The plan's cells by task."""
    planned = cli(["plan", str(matrix), "--json"], env)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    return {cell["task"]: cell for cell in json.loads(planned.stdout)["cells"]}


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def scontrol_job(job_id: str) -> dict[str, str]:
    """``scontrol show job``'s fields (JobState, NodeList, RunTime, ...); {} once the job is forgotten."""
    shown = subprocess.run(["scontrol", "show", "job", "--oneliner", job_id], capture_output=True, text=True, timeout=30)
    return dict(re.findall(r"(\w+)=(\S*)", shown.stdout)) if shown.returncode == 0 else {}


def wait_for(predicate, what: str, timeout: float = 600, poll: float = 0.5):
    """Poll ``predicate`` until it returns something true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(poll)
    return value


def job_processes(job_id: str, module: str | None = None) -> list[int]:
    """The pids of SLURM job ``job_id``'s processes on every node (the test cluster's nodes share one
    pid namespace); ``module``: only ``python -m MODULE`` ones (srun, which launches them, is not one).

    ``job_id``: a job number, or an array task ``ARRAY_TASK`` (matched on SLURM_ARRAY_JOB_ID and
    SLURM_ARRAY_TASK_ID: a pending array is one record whose number a task may or may not keep
    when it starts). Read from /proc, not ``scontrol listpids``, which asks the slurmd of the node
    it runs on and so sees nothing from outside the nodes' namespaces.
    """
    array, _, task = job_id.partition("_")
    wanted = ([f"SLURM_ARRAY_JOB_ID={array}", f"SLURM_ARRAY_TASK_ID={task}"] if task else [f"SLURM_JOB_ID={job_id}"])
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if all(item.encode() in environ for item in wanted) and (module is None or command[1:3] == [b"-m", module.encode()]):
            found.append(int(proc.name))
    return found


def freeze_training(job_id: str, ranks: int) -> list[int]:
    """SIGSTOP the job's training processes (all ``ranks`` of them): the job stays running, the
    training cannot finish before the interruption under test reaches it. SLURM sends SIGCONT
    before SIGTERM when it ends or requeues a job, so the frozen processes still stop cleanly."""
    pids = wait_for(lambda: (found := job_processes(job_id, "mae_transfer.train")) and len(found) >= ranks and found,
                    f"{ranks} training processes of job {job_id}")
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    return pids
