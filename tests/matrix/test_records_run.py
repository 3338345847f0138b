"""A real smoke cell under the ``best`` policy: its records, and result.json built from them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from matrix_helpers import TINY_SHAPE, cli, matrix_text

from mae_transfer.records import read_load_report, read_progress_record, read_validations

pytestmark = pytest.mark.slow


def test_best_policy_cell_records_validations_progress_and_checkpoint_provenance(tmp_path: Path, env) -> None:
    overrides = "{" + TINY_SHAPE + ", train_cfg.val_interval: 1}"
    matrix = tmp_path / "m.yaml"
    matrix.write_text(matrix_text(f"  - {{task: inat2017, recipe: smoke, overrides: {overrides}}}",
                                  extra="checkpoint_policy: best"))
    ran = cli(["run", str(matrix)], env, timeout=600)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    cell = json.loads(cli(["plan", str(matrix), "--json"], env).stdout)["cells"][0]
    cell_dir = Path(cell["work_dir"])
    train = cell_dir / "train"
    result = json.loads((cell_dir / "result.json").read_text())
    provenance = result["provenance"]

    validations = read_validations(train)
    assert [v.epoch for v in validations] == [1, 2, 3, 4]  # every validation, in percent
    assert all(0.0 <= v.metrics["accuracy/top1"] <= 100.0 for v in validations)
    at_step = next(v for v in validations if v.step == provenance["evaluated_step"])
    assert result["raw_metrics"] == at_step.metrics  # exactly: no rescaling
    assert result["metrics"]["top1"] == at_step.metrics["accuracy/top1"]
    best = max(v.metrics["accuracy/top1"] for v in validations)
    assert at_step.metrics["accuracy/top1"] == best
    assert list(train.glob(f"best_*_epoch_{at_step.epoch}.pth"))

    digest = hashlib.sha256(Path(cell["checkpoint"]).read_bytes()).hexdigest()
    assert provenance["checkpoint_sha256"] == digest
    load = provenance["load_report"]
    assert load == read_load_report(train) and load["format"] and load["matched"] > 0
    assert {k: type(load[k]) for k in ("missing", "dropped", "resized")} == dict.fromkeys(
        ("missing", "dropped", "resized"), int)

    progress = read_progress_record(train)
    assert progress is not None and progress.step == progress.total and progress.epoch == 4
    assert progress.latest == validations[-1].metrics
