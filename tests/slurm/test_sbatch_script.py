"""Script generation refuses what would break a SLURM job (issue 12 item 11); no cluster needed."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from mae_transfer.matrix.run.executors.sbatch import SlurmSpecError, check_resources, write_sbatch
from mae_transfer.matrix.plan.planner import plan_matrix
from mae_transfer.matrix.spec.matrix_spec import SpecError, load_spec

MATRIX = """
name: big
work_root: {work_root}
backbones: [{{name: b, checkpoint: w.pth, arch: vit_base_patch16}}]
tasks:
  - {{task: inat2017, recipe: paper}}
resources: {{gpus_per_cell: 1, time_limit_hours: {hours}, cpus_per_gpu: 2{partition}}}
"""


def _plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, hours: str = "1", partition: str | None = None,
          work_root: str = "runs/big"):
    monkeypatch.setenv("MAE_TRANSFER_CACHE", str(tmp_path / "cache"))
    (tmp_path / "w.pth").write_bytes(b"w")
    extra = f", partition: {partition}" if partition is not None else ""
    (tmp_path / "m.yaml").write_text(MATRIX.format(work_root=work_root, hours=hours, partition=extra))
    return plan_matrix(load_spec(tmp_path / "m.yaml"))


@pytest.mark.parametrize("partition", ['"gpu\\nrm -rf ~"', '"gpu; touch /tmp/x"', '"gpu --qos=high"', "[a, b]",
                                       '"$(id)"', '""'])
def test_partition_with_shell_or_header_characters_is_refused(tmp_path: Path, monkeypatch, partition: str) -> None:
    with pytest.raises(SpecError, match=r"m\.yaml: resources\.partition: .*expected a SLURM partition name"):
        _plan(tmp_path, monkeypatch, partition=partition)  # issue 19: the spec refuses it, before plan or doctor
    plan = _plan(tmp_path, monkeypatch)
    bad = replace(plan.cells[0].resources, partition=yaml.safe_load(partition))
    with pytest.raises(SlurmSpecError, match=r"m\.yaml: resources\.partition=.*expected a SLURM partition name"):
        check_resources(plan, bad)  # and the script writer would refuse it too


def test_valid_partitions_pass(tmp_path: Path, monkeypatch) -> None:
    plan = _plan(tmp_path, monkeypatch, partition='"gpu-a100.long,debug_2"')
    (script,) = write_sbatch(plan, plan.cells, max_parallel=1)
    assert "#SBATCH --partition=gpu-a100.long,debug_2" in script.read_text().splitlines()


@pytest.mark.parametrize("hours", [".nan", ".inf", "-1", "0"])
def test_non_finite_or_non_positive_time_limit_is_refused(tmp_path: Path, monkeypatch, hours: str) -> None:
    try:
        plan = _plan(tmp_path, monkeypatch, hours=hours)
    except ValueError as error:  # the spec may refuse it first; it must name the key
        assert "time_limit_hours" in str(error)
        return
    with pytest.raises(SlurmSpecError, match=r"resources\.time_limit_hours=.*expected a finite number of hours"):
        write_sbatch(plan, plan.cells, max_parallel=1)


def test_a_work_root_with_spaces_and_quotes_stays_one_word(tmp_path: Path, monkeypatch) -> None:
    plan = _plan(tmp_path, monkeypatch, work_root="\"runs/it's a run\"")
    (script,) = write_sbatch(plan, plan.cells, max_parallel=1)
    text = script.read_text()
    root = tmp_path / "runs" / "it's a run"
    assert f'#SBATCH --output="{root}/slurm/logs/%A_%a.out"' in text.splitlines()
    # the shell reads each listed cell dir as one word: run the lines that do, with bash
    lines = text.split("CELLS=(")[1].split('CELL_DIR="${CELLS[$SLURM_ARRAY_TASK_ID]}"')[0]
    shown = subprocess.run(["bash", "-c", f"SLURM_ARRAY_TASK_ID=0; CELLS=({lines}\n"
                            'CELL_DIR="${CELLS[$SLURM_ARRAY_TASK_ID]}"; printf %s "$CELL_DIR"'],
                           capture_output=True, text=True, check=True)
    assert shown.stdout == plan.cells[0].work_dir
    assert f"{sys.executable} -m mae_transfer.matrix.run.cell" in text
