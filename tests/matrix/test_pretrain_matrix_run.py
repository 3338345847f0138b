"""End to end: a matrix that pre-trains a tiny MAE, then transfers it, through `mae-transfer run`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from matrix_helpers import cli

pytestmark = pytest.mark.slow

# The smoke pre-training shortened to 8 epochs (4 steps each on the 64 generated images), its
# checkpoints after 6 and 8 evaluated by the iNat smoke fine-tuning (2 epochs).
MATRIX = """
name: stages
work_root: {work_root}
max_attempts: 1
backbones:
  - name: mae
    pretrain:
      config: pretrain/mae_vit-tiny-d4_smoke-64px.py
      recipe: smoke
      epochs: 8
      evaluate_epochs: [6, 8]
      overrides: {overrides}
datasets:
  imagenet: {{generate: true}}
  inat2017: {{generate: true}}
resources: {{gpus_per_cell: 0, time_limit_hours: 1, cpus_per_gpu: 2}}
tasks:
  - {{task: inat2017, recipe: smoke, overrides: {{train_cfg.max_epochs: 2, param_scheduler.1.end: 2}}}}
"""


def _matrix(tmp_path: Path, overrides: str = "{}") -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(MATRIX.format(work_root=json.dumps(str(tmp_path / "runs")), overrides=overrides))
    return path


def _cells(matrix: Path, env) -> list[dict]:
    planned = cli(["plan", str(matrix), "--json"], env)
    assert planned.returncode == 0, planned.stderr
    return json.loads(planned.stdout)["cells"]


def test_pretraining_then_transfer_runs_once_and_the_checkpoints_load(tmp_path: Path, env) -> None:
    matrix = _matrix(tmp_path)
    run = cli(["run", str(matrix), "--no-progress"], env, timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr[-4000:]
    assert "3 done, 0 failed" in run.stdout
    pretrain, *transfer = _cells(matrix, env)
    result = json.loads((Path(pretrain["work_dir"]) / "result.json").read_text())
    # held-out masked-patch loss with norm-pix targets: below predicting zeros (1.0)
    assert 0 < result["metrics"]["masked_patch_loss"] < 1.0
    written = result["provenance"]["pretrain_checkpoints"]
    assert sorted(written) == ["6", "8"] and all(Path(p).is_file() for p in written.values())
    figure = Path(result["provenance"]["reconstruction_png"])
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for cell in transfer:
        loaded = json.loads((Path(cell["work_dir"]) / "result.json").read_text())
        epoch = cell["pretrain"]["epoch"]
        assert loaded["cell"]["checkpoint"] == written[str(epoch)]
        # the official-format checkpoint with its decoder (mae_full): the encoder matched, the decoder dropped
        report = loaded["provenance"]["load_report"]
        assert report["format"] == "mae_full" and report["matched"] > 0 and report["missing"] == 0, report
        assert report["dropped"] > 0  # the decoder, mask token and decoder position table
        assert loaded["cell"]["pretrain"] == cell["pretrain"]
    again = cli(["run", str(matrix), "--no-progress"], env)
    assert again.returncode == 0 and "nothing to do: 3 of 3 cells already finished" in again.stdout, again.stdout


def test_a_failed_pretraining_blocks_its_transfer_cells(tmp_path: Path, env) -> None:
    # 5 decoder heads do not divide the 128-wide decoder: the pre-training fails when its model is built
    matrix = _matrix(tmp_path, overrides="{model.decoder.num_heads: 5}")
    run = cli(["run", str(matrix), "--no-progress"], env, timeout=600)
    assert run.returncode == 1, run.stdout + run.stderr[-3000:]
    assert "0 done, 1 failed" in run.stdout and "2 blocked by a failed pre-training" in run.stdout, run.stdout
    status = cli(["status", str(matrix), "--json"], env)
    states = {row["cell"]: row for row in json.loads(status.stdout)}
    blocked = [row for label, row in states.items() if label.startswith("inat2017")]
    assert [row["state"] for row in blocked] == ["blocked", "blocked"]
    assert all(row["attempts"] == 0 and "mae-pretrain.smoke.mae.s0" in row["error_tail"] for row in blocked)
    # the exhausted pre-training keeps them blocked; nothing is started again
    again = cli(["run", str(matrix), "--no-progress"], env)
    assert "nothing to do" in again.stdout and "2 blocked" in again.stdout, again.stdout
