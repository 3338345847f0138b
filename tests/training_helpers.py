"""Shared helpers for the tests that run tools/train.py in a real subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def subprocess_env() -> dict[str, str]:
    """The environment for training subprocesses: the checkout importable, no GPU.

    OMP_NUM_THREADS defaults to 2 (this machine's cores); set it to 1 when other jobs share the
    machine: two OpenMP threads under contention ran a training step ~20x slower here.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.setdefault("OMP_NUM_THREADS", "2")
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def train_command(config: Path, work_dir: Path, options: dict[str, object], *extra: str) -> list[str]:
    """``python tools/train.py CONFIG --work-dir DIR [extra] --cfg-options k=v ...``."""
    pairs = [f"{key}={value}" for key, value in options.items()]
    return [sys.executable, str(REPO / "tools" / "train.py"), str(config), "--work-dir", str(work_dir),
            *extra, *(["--cfg-options", *pairs] if pairs else [])]


def run(command: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run ``command`` from the repository root; fail the test with its output tail on error."""
    result = subprocess.run(command, cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command[:3])} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
        )
    return result


def kill_after_first_checkpoint(command: list[str], work_dir: Path, timeout: float) -> int:
    """Start ``command``; SIGKILL it once mmengine has recorded its first checkpoint.

    Returns the killed process's return code (-9).
    """
    marker = work_dir / "last_checkpoint"  # written after the checkpoint file is complete
    process = subprocess.Popen(command, cwd=REPO, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    try:
        while not marker.is_file():
            if process.poll() is not None:
                raise AssertionError(f"training ended before a checkpoint:\n{process.stderr.read().decode()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError("no checkpoint within the timeout")
            time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
        return process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()
