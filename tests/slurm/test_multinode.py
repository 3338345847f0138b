"""Issue 23: multi-node cells on the real two-node SLURM cluster (tools/slurm/setup_cluster.sh --nodes 2).

One run of ``run --executor slurm --wait`` trains three smoke cells (classification, COCO Mask
R-CNN, ADE20K UperNet) as 2 nodes x 1 process (gloo DDP across the nodes' network namespaces);
meanwhile the classification job is requeued (``scontrol requeue``) and later warned of its time
limit (SLURM's USR1, on which the script requeues itself). The same three cells as 1 node x 2
processes (torchrun; the same world size, per-process batch and seeds) are the reference: every
cell's metrics and final weights equal it bit for bit, the twice-interrupted one included. One
``--sbatch-only`` script, submitted by hand, is the text ``run`` submitted and trains the same.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from matrix_helpers import REPO, cli
from multinode_helpers import (
    ADE20K,
    CLASSIFICATION,
    COCO,
    ONE_NODE_TWO_PROCESSES,
    TWO_NODES,
    freeze_training,
    planned_cells,
    read_json,
    read_text,
    scontrol_job,
    wait_for,
    write_matrix,
)

import mae_transfer.integrations.engine  # noqa: F401  (allow-lists mmengine's checkpoint objects)
from mae_transfer.checkpoints.reader import read_training_checkpoint

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("two_nodes")]

TASKS = (CLASSIFICATION, COCO, ADE20K)
FINAL_CHECKPOINT = {"inat2017": "epoch_3.pth", "coco-maskrcnn": "iter_8.pth", "ade20k-upernet": "iter_8.pth"}


@pytest.fixture(scope="module")
def module_env(tmp_path_factory) -> dict[str, str]:
    """The environment of every ``mae-transfer`` process here (sbatch exports it to the jobs)."""
    return {**os.environ, "MAE_TRANSFER_CACHE": str(tmp_path_factory.mktemp("cache")), "OMP_NUM_THREADS": "1",
            "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}


def _outcome(matrix: Path, env: dict[str, str]) -> dict[str, dict]:
    """Per task: the planned cell, its result, its final weights and its log."""
    found = {}
    for task, cell in planned_cells(matrix, env).items():
        cell_dir = Path(cell["work_dir"])
        found[task] = {"cell": cell, "dir": cell_dir, "result": read_json(cell_dir / "result.json"),
                       "weights": read_training_checkpoint(cell_dir / "train" / FINAL_CHECKPOINT[task])["state_dict"],
                       "log": (cell_dir / "log.txt").read_text()}
    return found


@pytest.fixture(scope="module")
def reference(tmp_path_factory, module_env) -> dict[str, dict]:
    """The three cells as 1 node x 2 processes (torchrun, here), uninterrupted."""
    matrix = write_matrix(tmp_path_factory.mktemp("one-node"), "onenode", ONE_NODE_TWO_PROCESSES, TASKS)
    # one cell at a time (each is two processes on two cores); cells in parallel threads here also
    # race inside pkg_resources when mmengine reads their configs at once
    ran = cli(["run", str(matrix), "--executor", "torchrun", "--max-parallel", "1", "--no-progress"], module_env,
              timeout=1200)
    assert ran.returncode == 0 and "3 done, 0 failed" in ran.stdout, ran.stdout + ran.stderr[-4000:]
    return _outcome(matrix, module_env)


def _interruptions(cell_dir: Path) -> list[dict]:
    return [entry for entry in read_json(cell_dir / "state.json").get("history", []) if entry.get("interrupted")]


def _preempt_twice(cell_dir: Path) -> str:
    """Requeue the cell's job once it has a checkpoint, then let SLURM's time-limit signal requeue it
    again once it runs again; returns the job id. Each interruption waits on what the product writes
    (the job id, a checkpoint, the interrupted record), and the training is frozen first (SIGSTOP) so
    it cannot end before the interruption reaches it."""
    job_id = wait_for(lambda: read_json(cell_dir / "state.json").get("job_id"), "the classification job's id")
    # mmengine names the checkpoint in last_checkpoint once the file is written whole
    wait_for(lambda: read_text(cell_dir / "train" / "last_checkpoint").strip(), "the first checkpoint", timeout=900)
    freeze_training(job_id, ranks=2)
    requeued = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True, timeout=60)
    assert requeued.returncode == 0, requeued.stderr
    wait_for(lambda: len(_interruptions(cell_dir)) == 1, "the cell to record the requeue", timeout=120)

    wait_for(lambda: read_json(cell_dir / "state.json").get("state") == "running", "the job to run again", timeout=600)
    freeze_training(job_id, ranks=2)
    elapsed = scontrol_job(job_id)["RunTime"].split(":")  # [D-]HH:MM:SS; the job just started
    minutes = int(elapsed[-2]) + 60 * int(elapsed[-3].split("-")[-1]) + 2
    # 1-2 minutes left: within --signal=B:USR1@120, so slurmctld's next time-limit check signals it
    updated = subprocess.run(["scontrol", "update", f"JobId={job_id}", f"TimeLimit={minutes}"],
                             capture_output=True, text=True, timeout=60)
    assert updated.returncode == 0, updated.stderr
    wait_for(lambda: len(_interruptions(cell_dir)) == 2, "the time-limit signal to requeue the job", timeout=240)
    restored = subprocess.run(["scontrol", "update", f"JobId={job_id}", "TimeLimit=15"], capture_output=True,
                              text=True, timeout=60)
    assert restored.returncode == 0, restored.stderr
    return job_id


@pytest.fixture(scope="module")
def two_nodes_run(tmp_path_factory, module_env) -> dict:
    """The three cells as 2 nodes x 1 process through ``run --executor slurm --wait``; the
    classification job is requeued, then time-limited, while it trains."""
    matrix = write_matrix(tmp_path_factory.mktemp("two-nodes"), "twonodes", TWO_NODES, TASKS)
    cell_dir = Path(planned_cells(matrix, module_env)["inat2017"]["work_dir"])
    command = [sys.executable, "-m", "mae_transfer.cli", "run", str(matrix), "--executor", "slurm", "--wait",
               "--no-progress"]
    process = subprocess.Popen(command, env=module_env, cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        job_id = _preempt_twice(cell_dir)
        out, err = process.communicate(timeout=1500)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
            subprocess.run(["scancel", "-n", "mae-transfer-twonodes"], check=False)
    return {"matrix": matrix, "code": process.returncode, "out": out, "err": err, "requeued_job": job_id,
            "cells": _outcome(matrix, module_env)}


def _losses(cell_dir: Path) -> list[float]:
    """The training losses rank 0 logged, in order over every attempt (mmengine's scalars.json, one per run)."""
    runs = sorted((cell_dir / "train").glob("*/vis_data/scalars.json"))
    return [json.loads(line)["loss"] for path in runs for line in path.read_text().splitlines() if '"loss"' in line]


def test_two_node_cells_train_to_the_end_and_equal_one_node_two_processes(two_nodes_run, reference, module_env) -> None:
    run = two_nodes_run
    assert run["code"] == 0 and "3 done, 0 failed" in run["out"], run["out"] + run["err"][-4000:]
    jobs = dict(re.findall(r"cell (\S+): submitted as job (\d+_\d+)", run["err"]))
    assert len(jobs) == 3, run["err"][-3000:]
    for task, cell in run["cells"].items():
        log, result = cell["log"], cell["result"]
        assert "srun --nodes=2 --ntasks-per-node=1" in log and "--launcher slurm" in log, log[-2000:]
        assert "rank 0 of 2 on node1: rendezvous at node1:" in log and "rank 1 of 2 on node2: rendezvous at node1:" in log
        job = scontrol_job(jobs[cell["cell"]["label"]])
        assert (job["JobState"], job["NodeList"], job["NumNodes"]) == ("COMPLETED", "node[1-2]", "2"), job
        assert result["provenance"]["processes"] == 2 == reference[task]["result"]["provenance"]["processes"]
        assert result["cell"]["id"] == cell["cell"]["id"] != reference[task]["cell"]["id"]  # another cell, same world
        # the same world size, per-process batch and seeds: the same numbers, bit for bit
        assert result["metrics"] == reference[task]["result"]["metrics"], task
        assert result["raw_metrics"] == reference[task]["result"]["raw_metrics"], task
        weights, expected = cell["weights"], reference[task]["weights"]
        assert weights.keys() == expected.keys()
        different = [k for k in weights if not torch.equal(weights[k], expected[k])]
        assert not different, f"{task}: {len(different)} of {len(weights)} tensors differ: {different[:3]}"
        losses = _losses(cell["dir"])  # it learned: the loss went down over the run
        assert len(losses) >= 8 and sum(losses[-2:]) < sum(losses[:2]), (task, losses)
    assert run["cells"]["inat2017"]["result"]["metrics"]["top1"] > 25.0  # 4 generated classes: chance is 25
    rows = json.loads(cli(["status", str(run["matrix"]), "--json"], module_env).stdout)
    assert [row["state"] for row in rows] == ["done"] * 3, rows
    again = cli(["run", str(run["matrix"]), "--executor", "slurm", "--wait", "--no-progress"], module_env)
    assert "nothing to do: 3 of 3 cells already finished" in again.stdout, again.stdout + again.stderr[-2000:]


def test_requeued_then_time_limited_job_resumes_and_ends_as_the_uninterrupted_run(two_nodes_run, reference) -> None:
    cell = two_nodes_run["cells"]["inat2017"]
    state = read_json(cell["dir"] / "state.json")
    # two interruptions (SIGTERM from SLURM each time), neither counted as an attempt; then done
    assert [entry.get("interrupted") for entry in state["history"]] == ["SIGTERM", "SIGTERM", None], state
    assert state["state"] == "done" and state["attempts"] == 1 and state["history"][-1]["ok"] is True, state
    assert scontrol_job(two_nodes_run["requeued_job"])["Restarts"] == "2"
    log = cell["log"]
    assert log.count("training stopped by SIGTERM; the cell stays resumable") == 2, log[-3000:]
    resumed = re.findall(r"resuming from checkpoint (\S+) \(iteration (\d+)\)", log)
    assert len(resumed) == 2 and all(Path(path).name.startswith("epoch_") for path, _ in resumed), resumed
    slurm_log = (two_nodes_run["matrix"].parent / "runs" / "slurm" / "logs" / f"{two_nodes_run['requeued_job']}.out"
                 ).read_text()  # %A_%a.out
    assert slurm_log.count("DUE TO JOB REQUEUE") >= 2, slurm_log[-3000:]  # --open-mode=append keeps each run's lines
    # the result of the uninterrupted run, to the bit (also asserted above for every cell)
    assert cell["result"]["metrics"] == reference["inat2017"]["result"]["metrics"]
    assert all(torch.equal(cell["weights"][k], v) for k, v in reference["inat2017"]["weights"].items())


def test_sbatch_only_script_is_what_run_submits_and_trains_the_same_under_sbatch(tmp_path: Path, two_nodes_run,
                                                                                  reference, module_env) -> None:
    folder = tmp_path / "by-hand"
    matrix = write_matrix(folder, "twonodes", TWO_NODES, TASKS)
    scripts = folder / "runs" / "slurm"
    written = cli(["run", str(matrix), "--executor", "slurm", "--sbatch-only"], module_env)
    assert written.returncode == 0, written.stdout + written.stderr[-3000:]
    # the text run submitted for the same three cells, but for the work root (whose paths, in the
    # cells' configs, are part of the cell ids in the cell dirs' names)
    (submitted,) = (two_nodes_run["matrix"].parent / "runs" / "slurm" / "submitted").glob("*.sbatch")

    def general(text: str, root: Path) -> str:
        return re.sub(r"-[0-9a-f]{10}$", "-ID", text.replace(str(root), "ROOT"), flags=re.MULTILINE)

    assert general((scripts / "array-0.sbatch").read_text(), folder) == \
        general(submitted.read_text(), two_nodes_run["matrix"].parent)

    one = cli(["run", str(matrix), "--executor", "slurm", "--sbatch-only", "--only", "inat2017*"], module_env)
    assert one.returncode == 0, one.stdout + one.stderr[-3000:]
    script = scripts / "array-0.sbatch"  # now the classification cell alone, submitted as written
    sbatch = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True, env=module_env,
                            cwd=str(tmp_path), timeout=60)
    assert sbatch.returncode == 0, sbatch.stderr
    job_id = f"{sbatch.stdout.strip().split(';')[0]}_0"
    wait_for(lambda: scontrol_job(job_id).get("JobState") in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"),
             f"job {job_id} to end", timeout=900, poll=2)
    log = next((scripts / "logs").glob(f"{job_id.split('_')[0]}_0.out"))
    assert scontrol_job(job_id)["JobState"] == "COMPLETED", log.read_text()[-3000:]
    done = planned_cells(matrix, module_env)["inat2017"]
    result = read_json(Path(done["work_dir"]) / "result.json")
    assert result["metrics"] == reference["inat2017"]["result"]["metrics"] and result["provenance"]["processes"] == 2
    weights = read_training_checkpoint(Path(done["work_dir"]) / "train" / "epoch_3.pth")["state_dict"]
    assert all(torch.equal(weights[k], v) for k, v in reference["inat2017"]["weights"].items())
