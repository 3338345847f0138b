"""A cell's ``result.json``: metrics in percent, the recipe and the provenance, written atomically.

Layout (schema 1)::

    {"schema": 1, "cell": {id, label, backbone, arch, task, recipe, protocol, resolution, seed,
                           config, checkpoint},
     "metrics": {"AP_box": 51.2, ...},          # leaderboard names, percent
     "raw_metrics": {"coco/bbox_mAP": 51.2, ...},  # as tools/train.py wrote them (percent)
     "provenance": {git_commit, git_dirty, packages, device, gpus, effective_batch, eval_mode,
                    checkpoint_policy, evaluated_step, finished}}
"""

from __future__ import annotations

import json
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

from mae_transfer.matrix.planner import REPO_ROOT, Cell, package_versions
from mae_transfer.matrix.state import RESULT_NAME, write_json_atomic
from mae_transfer.matrix.tasks import TASKS

SCHEMA = 1


class ResultError(ValueError):
    """A result or metrics file is unreadable or lacks what is expected; names the file."""


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; ResultError naming the file otherwise."""
    try:
        payload = json.loads(path.read_text())
    except OSError as error:
        raise ResultError(f"{path}: cannot read: {error}") from error
    except ValueError as error:
        raise ResultError(f"{path}: not valid JSON: {error}") from error
    if not isinstance(payload, dict):
        raise ResultError(f"{path}: expected a JSON object, got {type(payload).__name__}")
    return payload


def read_train_metrics(train_dir: Path, name: str = "metrics.json") -> dict[str, float]:
    """The final metrics (percent) that ``tools/train.py`` (or ``tools/test.py``) wrote."""
    path = train_dir / name
    payload = read_json(path)
    metrics = payload.get("metrics", payload)
    if not isinstance(metrics, dict):
        raise ResultError(f"{path}: key 'metrics': expected a mapping of metric names to numbers")
    numeric = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if not numeric:
        raise ResultError(f"{path}: key 'metrics': no numeric metrics found")
    return numeric


def leaderboard_metrics(task: str, raw: dict[str, float], source: str) -> dict[str, float]:
    """Map raw metric keys to the leaderboard's names for ``task`` (first candidate found wins)."""
    metrics = {}
    for name, candidates in TASKS[task].metrics.items():
        for key in candidates:
            found = next((v for k, v in raw.items() if k == key or k.endswith("/" + key)), None)
            if found is not None:
                metrics[name] = found
                break
    if not metrics:
        expected = {name: list(c) for name, c in TASKS[task].metrics.items()}
        raise ResultError(f"{source}: none of the expected metric keys for {task} found; expected {expected}, "
                          f"found {sorted(raw)}")
    return metrics


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_provenance() -> dict[str, Any]:
    """The repository's commit (None before the first commit) and whether the tree is dirty."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": _git("rev-parse", "HEAD"), "git_dirty": bool(status) if status is not None else None}


def device_description(gpus: int) -> str:
    """The accelerator a cell ran on, in words."""
    try:
        import torch

        if gpus and torch.cuda.is_available():
            return f"{gpus} x {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return f"cpu ({platform.machine()}, {platform.processor() or 'unknown'})"


def effective_batch(train_dir: Path, world_size: int) -> int | None:
    """Images per optimizer step: per-process batch x processes x gradient accumulation.

    Read from the config mmengine dumped into the training work dir.
    """
    dumped = sorted(p for p in train_dir.glob("*.py"))
    if not dumped:
        return None
    try:
        from mmengine.config import Config

        cfg = Config.fromfile(str(dumped[0]))
        per_process = int(cfg.train_dataloader.batch_size)
        accumulate = int(cfg.get("optim_wrapper", {}).get("accumulative_counts", 1))
    except Exception:  # noqa: BLE001 - a provenance field must never fail a finished cell
        return None
    return per_process * max(world_size, 1) * accumulate


def build_result(cell: Cell, train_dir: Path, world_size: int, raw: dict[str, float],
                 evaluated_step: int | None) -> dict[str, Any]:
    """The ``result.json`` payload of a finished cell."""
    return {
        "schema": SCHEMA,
        "cell": {
            "id": cell.id, "label": cell.label, "backbone": cell.backbone, "arch": cell.arch, "task": cell.task,
            "recipe": cell.recipe, "protocol": cell.protocol, "resolution": cell.resolution, "seed": cell.seed,
            "config": cell.config, "checkpoint": cell.checkpoint,
        },
        "metrics": leaderboard_metrics(cell.task, raw, str(train_dir / "metrics.json")),
        "raw_metrics": raw,
        "provenance": {
            **git_provenance(),
            "packages": package_versions(),
            "device": device_description(world_size if cell.resources.gpus_per_cell else 0),
            "gpus": world_size if cell.resources.gpus_per_cell else 0,
            "processes": world_size,
            "effective_batch": effective_batch(train_dir, world_size),
            "eval_mode": cell.eval_mode,
            "checkpoint_policy": cell.checkpoint_policy,
            "evaluated_step": evaluated_step,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    }


def write_result(cell_dir: Path, payload: dict[str, Any]) -> Path:
    """Write ``result.json`` atomically (tmp file + os.replace)."""
    path = cell_dir / RESULT_NAME
    write_json_atomic(path, payload)
    return path


def validate_result(path: Path) -> dict[str, Any]:
    """A result file's payload, checked for the keys the leaderboard reads."""
    payload = read_json(path)
    for key in ("cell", "metrics", "provenance"):
        if not isinstance(payload.get(key), dict):
            raise ResultError(f"{path}: key {key!r}: missing or not a mapping")
    for key in ("backbone", "task", "recipe", "seed"):
        if key not in payload["cell"]:
            raise ResultError(f"{path}: key 'cell.{key}': missing")
    for name, value in payload["metrics"].items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ResultError(f"{path}: key 'metrics.{name}': expected a number, got {value!r}")
    return payload
