"""The local executor on real training: failures, retries and resume after SIGKILL. (A second run of a
finished matrix doing nothing is asserted on the smoke matrix's run, tests/matrix/test_smoke_matrix.py.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from matrix_helpers import REPO, TINY_CLASSIFIER, TINY_SHAPE, cli, matrix_text

pytestmark = pytest.mark.slow


def test_failing_cell_does_not_stop_others_status_shows_it_and_rerun_retries(tmp_path: Path, env) -> None:
    tasks = f"""  - {{task: inat2017, recipe: smoke, overrides: {TINY_CLASSIFIER}}}
  - {{task: inat2017, recipe: smoke, seeds: [7], overrides: {{optim_wrapper.optimizer.lr: -1.0, {TINY_SHAPE}}}}}"""
    matrix = tmp_path / "m.yaml"
    matrix.write_text(matrix_text(tasks, seeds="2", extra="max_parallel: 2"))
    first = cli(["run", str(matrix)], env)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "2 done, 1 failed" in first.stdout

    status = cli(["status", str(matrix), "--json"], env)
    rows = {row["cell"]: row for row in json.loads(status.stdout)}
    assert {label: row["state"] for label, row in rows.items()} == {
        "inat2017.smoke.finetune.tiny.s0": "done", "inat2017.smoke.finetune.tiny.s1": "done",
        "inat2017.smoke.finetune.tiny.s7": "failed"}
    failed = rows["inat2017.smoke.finetune.tiny.s7"]
    assert failed["attempts"] == 1 and "Invalid learning rate" in failed["error_tail"]
    readable = cli(["status", str(matrix)], env)
    assert "failed" in readable.stdout and "Invalid learning rate" in readable.stdout

    second = cli(["run", str(matrix)], env)
    assert "1 failed; 2 were already finished" in second.stdout, second.stdout
    rows = {row["cell"]: row for row in json.loads(cli(["status", str(matrix), "--json"], env).stdout)}
    assert rows["inat2017.smoke.finetune.tiny.s7"]["attempts"] == 2

    result = json.loads((Path(json.loads(cli(["plan", str(matrix), "--json"], env).stdout)["cells"][0]["work_dir"])
                         / "result.json").read_text())
    assert 0.0 <= result["metrics"]["top1"] <= 100.0
    assert result["provenance"]["eval_mode"] == "ss" and result["provenance"]["checkpoint_policy"] == "last"
    assert result["provenance"]["effective_batch"] == 8 and result["provenance"]["packages"]["torch"] != "absent"


def test_sigkill_mid_cell_then_rerun_resumes_from_checkpoint(tmp_path: Path, env) -> None:
    # killed once epoch 3's checkpoint is complete, 5 epochs before the end
    long_run = "{" + TINY_SHAPE + ", train_cfg.max_epochs: 8, train_cfg.val_interval: 8, param_scheduler.1.end: 8}"
    matrix = tmp_path / "m.yaml"
    matrix.write_text(matrix_text(f"  - {{task: inat2017, recipe: smoke, overrides: {long_run}}}"))
    cell_dir = Path(json.loads(cli(["plan", str(matrix), "--json"], env).stdout)["cells"][0]["work_dir"])
    run = subprocess.Popen([sys.executable, "-m", "mae_transfer.cli", "run", str(matrix)], env=env, cwd=str(REPO),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    marker = cell_dir / "train" / "last_checkpoint"  # mmengine updates it after the file is complete
    while time.time() < deadline and not (marker.is_file() and marker.read_text().strip().endswith("epoch_3.pth")):
        assert run.poll() is None, "run ended before it could be interrupted"
        time.sleep(0.1)
    state = json.loads((cell_dir / "state.json").read_text())
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    time.sleep(1.0)
    train_pids = [p for p in os.listdir("/proc") if p.isdigit() and str(cell_dir) in _cmdline(p)]
    assert train_pids == [], "the training process outlived the killed run"
    assert state["state"] == "running" and not (cell_dir / "result.json").exists()

    status = json.loads(cli(["status", str(matrix), "--json"], env).stdout)
    assert status[0]["state"] == "interrupted"
    again = cli(["run", str(matrix)], env, timeout=900)
    assert again.returncode == 0, again.stdout + again.stderr
    log = (cell_dir / "log.txt").read_text()
    resumed = [line for line in log.splitlines() if "[mae-transfer] resuming from checkpoint" in line]
    assert len(resumed) == 1 and "(iteration None)" not in resumed[0]
    epoch = int(resumed[0].rsplit("(iteration ", 1)[1].rstrip(")"))
    assert epoch >= 3
    assert f"resumed epoch: {epoch}" in log  # mmengine's own record of where it resumed
    assert json.loads((cell_dir / "result.json").read_text())["metrics"]["top1"] >= 0.0
    assert json.loads((cell_dir / "state.json").read_text())["attempts"] == 2


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
