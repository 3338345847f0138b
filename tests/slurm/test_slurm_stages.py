"""Pre-train -> transfer on the real one-node SLURM cluster: the transfer job depends on the pre-training job."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from matrix_helpers import cli

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("slurm_cluster")]

# one pre-training of 6 epochs (4 steps each); the transfer cells (2 epochs each) evaluate the
# checkpoints of `evaluate_epochs`; one CPU per job
MATRIX = """
name: {name}
work_root: {work_root}
max_attempts: 1
backbones:
  - name: mae
    pretrain:
      config: pretrain/mae_vit-tiny-d4_smoke-64px.py
      recipe: smoke
      epochs: 6
      evaluate_epochs: {epochs}
      overrides: {overrides}
datasets:
  imagenet: {{generate: true}}
  inat2017: {{generate: true}}
resources: {{gpus_per_cell: 0, time_limit_hours: 0.25, cpus_per_gpu: 1}}
tasks:
  - {{task: inat2017, recipe: smoke, overrides: {{train_cfg.max_epochs: 2, param_scheduler.1.end: 2}}}}
"""


def _matrix(tmp_path: Path, name: str, overrides: str = "{}", epochs: str = "[6]") -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(MATRIX.format(name=name, work_root=json.dumps(str(tmp_path / "runs")), overrides=overrides,
                                  epochs=epochs))
    return path


def _submission_lines(work_root: Path, job_id: str) -> list[str]:
    """The #SBATCH lines of the script submitit submitted for ``job_id``."""
    scripts = [p for p in (work_root / "slurm").rglob("*_submission.sh") if job_id.split("_")[0] in p.name]
    assert scripts, sorted(str(p) for p in (work_root / "slurm").rglob("*"))
    return [line for line in scripts[0].read_text().splitlines() if line.startswith("#SBATCH")]


def test_the_transfer_jobs_wait_on_the_pretraining_job(tmp_path: Path, env) -> None:
    matrix = _matrix(tmp_path, "stages", epochs="[4, 6]")
    run = cli(["run", str(matrix), "--executor", "slurm", "--cluster", "slurm", "--wait", "--no-progress"], env,
              timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr[-4000:]
    assert "3 done, 0 failed" in run.stdout, run.stdout
    jobs = dict(re.findall(r"cell (\S+): submitted as job (\d+(?:_\d+)?)", run.stderr))
    pretrain_job = jobs.pop("mae-pretrain.smoke.mae.s0")
    assert sorted(jobs) == ["inat2017.smoke.finetune.mae-ep4.s0", "inat2017.smoke.finetune.mae-ep6.s0"]
    for transfer_job in jobs.values():
        lines = _submission_lines(tmp_path / "runs", transfer_job)
        assert f"#SBATCH --dependency=afterok:{pretrain_job}" in lines and "#SBATCH --kill-on-invalid-dep=yes" in lines
    assert not any("--dependency" in line for line in _submission_lines(tmp_path / "runs", pretrain_job))
    again = cli(["run", str(matrix), "--executor", "slurm", "--cluster", "slurm", "--wait", "--no-progress"], env)
    assert "nothing to do: 3 of 3 cells already finished" in again.stdout, again.stdout


def test_a_failed_pretraining_job_leaves_its_transfer_cell_blocked(tmp_path: Path, env) -> None:
    matrix = _matrix(tmp_path, "stagesfail", overrides="{model.decoder.num_heads: 5}")  # 5 does not divide 128
    run = cli(["run", str(matrix), "--executor", "slurm", "--cluster", "slurm", "--wait", "--no-progress"], env,
              timeout=600)
    assert run.returncode == 1, run.stdout + run.stderr[-4000:]
    assert "0 done, 1 failed" in run.stdout and "1 blocked by a failed pre-training" in run.stdout, run.stdout
    status = json.loads(cli(["status", str(matrix), "--json"], env).stdout)
    assert [(row["state"], row["attempts"]) for row in status] == [("failed", 1), ("blocked", 0)]
