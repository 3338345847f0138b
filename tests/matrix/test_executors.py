"""torchrun (2 CPU processes, gloo) and SLURM (submitit's LocalExecutor; generated sbatch) paths."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from matrix_helpers import REPO, TINY_CLASSIFIER, cli, matrix_text

from mae_transfer.matrix.run.executors import RunSummary, prepare
from mae_transfer.matrix.run.executors.sbatch import write_sbatch
from mae_transfer.matrix.plan.planner import plan_matrix
from mae_transfer.matrix.spec.matrix_spec import load_spec


@pytest.mark.slow
def test_torchrun_two_cpu_processes_for_one_classification_cell(tmp_path: Path, env) -> None:
    matrix = tmp_path / "m.yaml"
    # two processes planned (gpus_per_cell: 2 runs as two CPU processes on a machine without GPUs)
    tasks = f"  - {{task: inat2017, recipe: smoke, overrides: {TINY_CLASSIFIER}, resources: {{gpus_per_cell: 2}}}}"
    matrix.write_text(matrix_text(tasks))
    run = cli(["run", str(matrix), "--executor", "torchrun", "--nproc-per-node", "2"], env)
    assert run.returncode == 0, run.stdout + run.stderr
    cell_dir = Path(json.loads(cli(["plan", str(matrix), "--json"], env).stdout)["cells"][0]["work_dir"])
    log = (cell_dir / "log.txt").read_text()
    assert "torch.distributed.run --nproc-per-node 2" in log and "--launcher pytorch" in log
    from mmengine.config import Config

    dumped = Config.fromfile(str(cell_dir / "config.py"), import_custom_modules=False)  # what the cell trains from
    assert dumped.env_cfg.dist_cfg.backend == "gloo" and dumped.model_wrapper_cfg.device_ids is None
    result = json.loads((cell_dir / "result.json").read_text())
    assert result["provenance"]["processes"] == 2
    # the smoke recipe's batch 8 = 4 per process x 2 processes (the planner halves the per-process batch)
    assert (result["provenance"]["effective_batch"], result["provenance"]["per_gpu_batch"]) == (8, 4)


@pytest.mark.slow
def test_slurm_path_through_submitit_local_executor(tmp_path: Path, env) -> None:
    pytest.importorskip("submitit")
    matrix = tmp_path / "m.yaml"
    matrix.write_text(matrix_text(f"  - {{task: inat2017, recipe: smoke, overrides: {TINY_CLASSIFIER}}}", seeds="2"))
    run = cli(["run", str(matrix), "--executor", "slurm", "--cluster", "local", "--wait"], env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 done, 0 failed" in run.stdout
    cells = json.loads(cli(["plan", str(matrix), "--json"], env).stdout)["cells"]
    for cell in cells:
        assert json.loads((Path(cell["work_dir"]) / "result.json").read_text())["cell"]["seed"] == cell["seed"]
    submitted = list((tmp_path / "runs" / "t" / "slurm").rglob("*_submitted.pkl"))
    assert len(submitted) == 2  # one pickled job per array task
    again = cli(["run", str(matrix), "--executor", "slurm", "--cluster", "local", "--wait"], env)
    assert "nothing to do" in again.stdout


def test_generated_sbatch_script_line_by_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAE_TRANSFER_CACHE", str(tmp_path / "cache"))
    (tmp_path / "w.pth").write_bytes(b"w")
    (tmp_path / "m.yaml").write_text("""
name: big
backbones: [{name: b, checkpoint: w.pth, arch: vit_base_patch16}]
tasks:
  - {task: inat2017, recipe: paper}
  - {task: coco-maskrcnn, recipe: vitdet, resources: {gpus_per_cell: 8, nodes: 8, time_limit_hours: 71.5, partition: gpu}}
seeds: 3
max_parallel: 4
resources: {gpus_per_cell: 8, time_limit_hours: 48, cpus_per_gpu: 10}
""")
    plan = plan_matrix(load_spec(tmp_path / "m.yaml"))
    scripts = write_sbatch(plan, plan.cells, max_parallel=4)
    assert [s.name for s in scripts] == ["array-0.sbatch", "array-1.sbatch"]
    root = tmp_path / "runs" / "big"
    single = scripts[0].read_text().splitlines()
    inat = [c.work_dir for c in plan.cells if c.task == "inat2017"]
    assert single == [
        "#!/bin/bash",
        "#SBATCH --job-name=mae-transfer-big",
        "#SBATCH --array=0-2%4",
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --gpus-per-node=8",
        "#SBATCH --cpus-per-task=80",
        "#SBATCH --time=48:00:00",
        "#SBATCH --requeue",
        "#SBATCH --signal=B:USR1@120",
        f"#SBATCH --output={root}/slurm/logs/%A_%a.out",
        "#SBATCH --open-mode=append",
        "set -euo pipefail",
        "CELLS=(",
        *(f"  {work_dir}" for work_dir in inat),
        ")",
        'CELL_DIR="${CELLS[$SLURM_ARRAY_TASK_ID]}"',
        'requeue() { scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"; }',
        "trap requeue USR1",
        'forward() { kill -TERM "$cell" 2>/dev/null || true; }',
        "trap forward TERM",
        f"cd {REPO}",
        f'export PYTHONPATH={REPO}"${{PYTHONPATH:+:$PYTHONPATH}}"',
        f'{sys.executable} -m mae_transfer.matrix.run.cell "$CELL_DIR" --launcher pytorch --nproc 8 &',
        "cell=$!",
        'while :; do wait "$cell" && exit 0; code=$?; kill -0 "$cell" 2>/dev/null || exit "$code"; done',
    ]
    multi = scripts[1].read_text().splitlines()
    assert "#SBATCH --nodes=8" in multi and "#SBATCH --ntasks-per-node=8" in multi
    assert "#SBATCH --cpus-per-task=10" in multi and "#SBATCH --time=71:30:00" in multi
    assert "#SBATCH --partition=gpu" in multi
    assert any("--launcher slurm --nproc 8 &" in line for line in multi)


def test_prepare_writes_generated_checkpoint_and_cell_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setenv("MAE_TRANSFER_CACHE", str(tmp_path / "cache"))
    (tmp_path / "m.yaml").write_text(matrix_text("  - {task: inat2017, recipe: smoke}").replace(
        "inat2017: {generate: true}", "inat2017: {root: nowhere}"))
    plan = plan_matrix(load_spec(tmp_path / "m.yaml"))
    prepare(plan)
    checkpoint = torch.load(tmp_path / "runs" / "t" / "checkpoints" / "tiny.pth", weights_only=True)
    assert checkpoint["model"]["pos_embed"].shape == (1, 197, 192) and "blocks.11.mlp.fc2.weight" in checkpoint["model"]
    cell = json.loads((Path(plan.cells[0].work_dir) / "cell.json").read_text())
    assert cell["id"] == plan.cells[0].id and cell["cfg_options"]["model.pretrained"].endswith("tiny.pth")
    assert RunSummary().nothing_to_do
