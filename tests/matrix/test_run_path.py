"""The run path on real training: a cell's config.py alone reproduces it; an installed package runs anywhere."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from mae_transfer.matrix.run.result import validate_result

from matrix_helpers import REPO, TINY_CLASSIFIER, cli, matrix_text

pytestmark = pytest.mark.slow


def test_cell_trains_from_its_config_alone_with_a_space_and_a_comma_in_its_paths(tmp_path: Path, env) -> None:
    work_root = tmp_path / "runs, with a space"  # the checkpoint and data paths inherit it
    matrix = tmp_path / "m.yaml"
    matrix.write_text(matrix_text(f"  - {{task: inat2017, recipe: smoke, overrides: {TINY_CLASSIFIER}}}",
                                  extra=f'work_root: "{work_root}"'))
    run = cli(["run", str(matrix)], env)
    assert run.returncode == 0, run.stdout + run.stderr
    cell = json.loads(cli(["plan", str(matrix), "--json"], env).stdout)["cells"][0]
    cell_dir = Path(cell["work_dir"])
    assert " " in cell["checkpoint"] and "," in cell["checkpoint"]
    commands = [line for line in (cell_dir / "log.txt").read_text().splitlines() if "mae_transfer.train" in line]
    assert commands and all("--cfg-options" not in line for line in commands)
    assert repr(cell["checkpoint"]) in (cell_dir / "config.py").read_text()

    again = tmp_path / "again"
    by_hand = subprocess.run([sys.executable, "-m", "mae_transfer.train", str(cell_dir / "config.py"),
                              "--work-dir", str(again)], env=env, cwd=str(tmp_path), capture_output=True, text=True,
                             timeout=600)
    assert by_hand.returncode == 0, by_hand.stderr[-3000:]
    first = json.loads((cell_dir / "train" / "metrics.json").read_text())
    second = json.loads((again / "metrics.json").read_text())
    assert second["metrics"] == pytest.approx(first["metrics"]), (first, second)
    assert second["iteration"] == first["iteration"]


def _install(tmp_path: Path) -> Path:
    """This checkout installed non-editable into a fresh target directory; the target."""
    source = tmp_path / "source"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(REPO, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "tests", "runs", "work_dirs", "build", "*.egg-info", "__pycache__", ".pytest_cache"))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(source)], check=True, capture_output=True, text=True, timeout=600)
    return site


def test_installed_package_makes_data_plans_and_runs_a_smoke_cell_from_any_directory(tmp_path: Path) -> None:
    site = _install(tmp_path)
    assert (site / "mae_transfer" / "configs" / "smoke" / "coco_maskrcnn.py").is_file()
    assert (site / "mae_transfer" / "references" / "mae_paper.yaml").is_file()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dependencies = sysconfig.get_paths()["purelib"]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OMP_NUM_THREADS": "2",
           "MAE_TRANSFER_CACHE": str(tmp_path / "cache"), "PYTHONPATH": f"{site}:{dependencies}"}

    def mae_transfer(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "mae_transfer.cli", *args], env=env, cwd=str(elsewhere),
                              capture_output=True, text=True, timeout=timeout)

    where = subprocess.run([sys.executable, "-c", "import mae_transfer; print(mae_transfer.__file__)"], env=env,
                           cwd=str(elsewhere), capture_output=True, text=True, check=True)
    assert where.stdout.strip() == str(site / "mae_transfer" / "__init__.py")

    made = mae_transfer("data", "make", "coco", "coco")
    assert made.returncode == 0, made.stdout + made.stderr
    (elsewhere / "m.yaml").write_text("""
name: installed
work_root: runs
seeds: 1
backbones:
  - {name: tiny, checkpoint: "generate:vit_tiny_patch16", depth: 4}
datasets:
  coco: {root: coco}
resources: {gpus_per_cell: 0, time_limit_hours: 1}
tasks:
  - {task: coco-maskrcnn, recipe: smoke, overrides: {train_cfg.max_iters: 4, train_cfg.val_interval: 4,
     default_hooks.checkpoint.interval: 4, default_hooks.logger.interval: 1}}
""")
    plan = mae_transfer("plan", "m.yaml", "--json")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    cells = json.loads(plan.stdout)["cells"]
    assert len(cells) == 1 and cells[0]["config"] == str(site / "mae_transfer" / "configs" / "smoke" / "coco_maskrcnn.py")
    run = mae_transfer("run", "m.yaml", timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr + (Path(cells[0]["work_dir"]) / "log.txt").read_text()[-3000:]
    status = json.loads(mae_transfer("status", "m.yaml", "--json").stdout)
    assert [row["state"] for row in status] == ["done"]
    result = validate_result(Path(cells[0]["work_dir"]) / "result.json", cells[0]["id"])
    assert result["metrics"]
