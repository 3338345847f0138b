"""Issue 12: a cell SIGKILLed anywhere in its life, then re-run, ends as the uninterrupted cell.

For each failpoint of `mae_transfer.failpoints` (first step, mid-epoch, half-written checkpoint,
validation, half-written result) the real ``mae-transfer run`` CLI runs a tiny classification
cell with the point armed; the process at the point kills itself with SIGKILL. The user's
answer is to run ``mae-transfer run`` again (the same environment: the marker file keeps the
point from firing twice). Then the cell is done once, its result is valid, and its final
weights and metrics equal the uninterrupted run's, bit for bit (CPU, deterministic mode).

A SIGKILLed training is a failed attempt (it is not SIGINT/SIGTERM), so the matrix allows
``max_attempts: 3``; a SIGKILLed ``run`` process leaves its cell ``running`` with a dead pid,
which the next run resumes as interrupted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from matrix_helpers import cli, matrix_text

import mae_transfer.integrations.engine  # noqa: F401  (allow-lists mmengine's checkpoint objects)
from mae_transfer.checkpoints.reader import read_training_checkpoint
from mae_transfer.failpoints import MARKER_ENV, POINTS
from mae_transfer.failpoints import ENV as FAILPOINT_ENV
from mae_transfer.matrix.run.result import validate_result
from mae_transfer.matrix.run.resume import checkpoint_problem

pytestmark = pytest.mark.slow

# 3 epochs of 8 iterations, a checkpoint and a validation (2 batches) after each
SCHEDULE = ("{train_cfg.max_epochs: 3, train_cfg.val_interval: 1, param_scheduler.1.end: 3, "
            "randomness.deterministic: true}")
BACKBONE = '  - {name: tiny, checkpoint: "generate:vit_tiny_patch16"}'


def _matrix(root: Path) -> Path:
    root.mkdir(parents=True)
    matrix = root / "m.yaml"
    matrix.write_text(matrix_text(f"  - {{task: inat2017, recipe: smoke, overrides: {SCHEDULE}}}")
                      .replace(BACKBONE, BACKBONE[:-1] + ", depth: 4}"))
    return matrix


def _cell_dir(matrix: Path, env: dict[str, str]) -> Path:
    return Path(json.loads(cli(["plan", str(matrix), "--json"], env).stdout)["cells"][0]["work_dir"])


def _final_weights(cell_dir: Path) -> dict[str, torch.Tensor]:
    pointer = Path((cell_dir / "train" / "last_checkpoint").read_text().strip())
    assert pointer.name == "epoch_3.pth", pointer
    return read_training_checkpoint(pointer)["state_dict"]


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    cache = tmp_path_factory.mktemp("cache")
    environ = {k: v for k, v in os.environ.items() if k not in (FAILPOINT_ENV, MARKER_ENV)}
    repo = str(Path(__file__).resolve().parents[2])
    return {**environ, "MAE_TRANSFER_CACHE": str(cache), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
            "PYTHONPATH": os.pathsep.join(p for p in (repo, environ.get("PYTHONPATH")) if p)}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, env) -> dict:
    """The uninterrupted cell: its final weights and result."""
    matrix = _matrix(tmp_path_factory.mktemp("reference") / "m")
    ran = cli(["run", str(matrix)], env, timeout=600)
    assert ran.returncode == 0, ran.stdout + ran.stderr[-3000:]
    cell_dir = _cell_dir(matrix, env)
    return {"weights": _final_weights(cell_dir), "result": validate_result(cell_dir / "result.json")}


@pytest.mark.parametrize("point", POINTS)
def test_cell_killed_at_a_failpoint_and_rerun_ends_as_the_uninterrupted_run(tmp_path: Path, env, reference,
                                                                            point: str) -> None:
    matrix = _matrix(tmp_path / "m")
    cell_dir = _cell_dir(matrix, env)
    marker = tmp_path / "fired"
    armed = {**env, FAILPOINT_ENV: point, MARKER_ENV: str(marker)}

    killed = cli(["run", str(matrix)], armed, timeout=600)
    assert marker.read_text().startswith(point), killed.stdout + killed.stderr[-3000:]
    assert not (cell_dir / "result.json").exists()
    state = json.loads((cell_dir / "state.json").read_text())
    if point == "result_write":  # the run process itself died: the cell is left running, pid dead
        assert killed.returncode == -9 and state["state"] == "running"
        assert list(cell_dir.glob(".result.json.*.tmp")), "the half-written temporary result is not there"
        (row,) = json.loads(cli(["status", str(matrix), "--json"], env).stdout)
        assert row["state"] == "interrupted"
    else:  # the training process died: a failed attempt, retried by the next run
        assert killed.returncode == 1, killed.stdout + killed.stderr[-3000:]
        assert state["state"] == "failed" and state["attempts"] == 1 and "code -9" in state["error_tail"]
    if point == "checkpoint_write":
        partial = cell_dir / "train" / "epoch_2.pth"
        assert checkpoint_problem(partial) is not None, "the killed save left a readable checkpoint"

    again = cli(["run", str(matrix)], armed, timeout=600)  # what the user does: run it again
    assert again.returncode == 0, again.stdout + again.stderr[-3000:]
    assert marker.read_text().startswith(point)  # it fired once only

    state = json.loads((cell_dir / "state.json").read_text())
    assert state["state"] == "done" and state["attempts"] == 2, state
    assert [h["ok"] for h in state["history"]] == ([True] if point == "result_write" else [False, True])
    result = validate_result(cell_dir / "result.json")
    assert result["metrics"] == reference["result"]["metrics"]
    assert result["raw_metrics"] == reference["result"]["raw_metrics"]
    assert not list(cell_dir.glob(".result.json.*.tmp")), "the killed result write's temporary file is left behind"
    log = (cell_dir / "log.txt").read_text()
    resumed = [line for line in log.splitlines() if "[mae-transfer] resuming from checkpoint" in line]
    expected = {"first_step": None, "mid_epoch": "epoch_1.pth", "checkpoint_write": "epoch_1.pth",
                "evaluation": "epoch_1.pth", "result_write": "epoch_3.pth"}[point]
    assert [Path(line.split()[4]).name for line in resumed] == ([expected] if expected else []), resumed

    weights = _final_weights(cell_dir)
    assert weights.keys() == reference["weights"].keys()
    different = [k for k in weights if not torch.equal(weights[k], reference["weights"][k])]
    assert not different, f"{len(different)} of {len(weights)} tensors differ from the uninterrupted run: {different[:3]}"
    (row,) = json.loads(cli(["status", str(matrix), "--json"], env).stdout)
    assert row["state"] == "done"
    assert "nothing to do: 1 of 1 cells already finished" in cli(["run", str(matrix)], env).stdout
