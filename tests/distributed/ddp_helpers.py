"""Run tools/train.py under ``python -m torch.distributed.run`` (2 processes, gloo, CPU).

Each run uses a one-file config in the work dir that inherits the config under test and adds
the test-only :mod:`ddp_record_hook` (through ``custom_imports``; this folder goes on the
subprocess's PYTHONPATH), so every rank writes ``ddp_rank{RANK}.json``.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from training_helpers import REPO, subprocess_env

HERE = Path(__file__).resolve().parent
NPROC = 2


@dataclass
class DDPRun:
    """The outcome of one 2-process run."""

    work_dir: Path
    ranks: list[dict]
    deviations: list[dict]
    metrics: dict
    seconds: float


def wrapper_config(config: Path, work_dir: Path) -> Path:
    """A config inheriting ``config`` plus the record hook, written into ``work_dir``."""
    from mmengine.config import Config

    base = Config.fromfile(str(config), import_custom_modules=False)
    imports = [*base.get("custom_imports", {}).get("imports", []), "ddp_record_hook"]
    hooks = [*base.get("custom_hooks", []), dict(type="DDPRecordHook")]
    path = work_dir / f"ddp_{config.stem}.py"
    path.write_text(
        f"_base_ = [{str(config)!r}]\n"
        f"custom_imports = dict(imports={imports!r}, allow_failed_imports=False)\n"
        f"custom_hooks = {hooks!r}\n"
    )
    return path


def torchrun_command(config: Path, work_dir: Path, options: dict[str, object]) -> list[str]:
    """``python -m torch.distributed.run --nproc-per-node 2 tools/train.py ... --launcher pytorch``."""
    pairs = [f"{key}={value}" for key, value in options.items()]
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(NPROC),
        str(REPO / "tools" / "train.py"), str(config), "--work-dir", str(work_dir), "--launcher", "pytorch",
        *(["--cfg-options", *pairs] if pairs else []),
    ]


def run_ddp(config: Path, work_dir: Path, options: dict[str, object], timeout: float = 240) -> DDPRun:
    """Train ``config`` in 2-process DDP on CPU; fail with the output tail if it does not finish."""
    import time

    work_dir.mkdir(parents=True, exist_ok=True)
    env = subprocess_env()
    env["OMP_NUM_THREADS"] = "1"  # two processes on a 2-core machine
    env["PYTHONPATH"] = f"{HERE}:{env['PYTHONPATH']}"
    command = torchrun_command(wrapper_config(config, work_dir), work_dir, options)
    start = time.monotonic()
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    seconds = time.monotonic() - start
    if result.returncode != 0:
        raise AssertionError(
            f"2-process DDP run of {config.name} failed ({result.returncode}):\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-6000:]}"
        )
    ranks = [json.loads((work_dir / f"ddp_rank{rank}.json").read_text()) for rank in range(NPROC)]
    deviations = json.loads((work_dir / "deviations.json").read_text())
    metrics = json.loads((work_dir / "metrics.json").read_text())
    return DDPRun(work_dir, ranks, deviations, metrics, seconds)


def check_ddp_run(run: DDPRun, min_steps: int = 3) -> None:
    """At least ``min_steps`` optimizer steps per rank, finite losses, an evaluation, and the
    same parameters on both ranks afterwards (and changed by training)."""
    first, second = run.ranks
    assert [r["rank"] for r in run.ranks] == [0, 1] and all(r["world_size"] == NPROC for r in run.ranks)
    assert all(r["wrapper"] == "MMDistributedDataParallel" for r in run.ranks)
    for record in run.ranks:
        assert record["iterations"] >= min_steps and len(record["losses"]) >= min_steps, record["iterations"]
        assert record["optimizer_steps"] >= min_steps, record["optimizer_steps"]
        assert all(math.isfinite(loss) for loss in record["losses"]), record["losses"]
        assert record["validations"] and record["validations"][-1], "no evaluation ran"
    assert first["final"] and first["final"].keys() == second["final"].keys()
    differing = [name for name in first["final"] if first["final"][name] != second["final"][name]]
    assert differing == [], f"parameters differ between the ranks: {differing[:10]}"
    assert first["initial"] == second["initial"], "the ranks started from different weights"
    changed = [name for name in first["final"] if first["final"][name] != first["initial"][name]]
    assert changed, "training changed no parameter"
    assert run.metrics["metrics"] and all(math.isfinite(v) for v in run.metrics["metrics"].values())
