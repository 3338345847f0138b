"""A cell's ``result.json``: metrics in percent, the recipe and the provenance, written atomically.

Layout (schema 2)::

    {"schema": 1, "cell": {id, label, backbone, arch, task, recipe, protocol, resolution, seed,
                           config, checkpoint},
     "metrics": {"AP_box": 51.2, ...},          # leaderboard names, percent
     "raw_metrics": {"coco/bbox_mAP": 51.2, ...},  # as tools/train.py wrote them (percent)
     "provenance": {git_commit, git_dirty, packages, device, gpus, processes, effective_batch,
                    per_gpu_batch, accumulation, lr, recipe_batch, recipe_lr, off_recipe,
                    off_recipe_reason, eval_mode, checkpoint_policy, evaluated_step, finished,
                    checkpoint_sha256,                   # the pretrained checkpoint file's content
                    load_report: {source, format, arch, model_arch, matched, missing, dropped, resized}},
     "probe": {protocol, grid, points, chosen, holdout, refit, processes, cache, val_images}}
                                                 # frozen-probe cells only (train/probe.json): the
                                                 # grid, every point's hold-out score, the choice

Schema 2 added ``checkpoint_sha256`` and ``load_report`` (the trainer's ``train/load_report.json``,
`mae_transfer.records`); schema-1 results are still read.

The batch and lr in the provenance are read back from the config mmengine dumped into the
training work dir (what really ran) and compared with the plan: a mismatch fails the cell
instead of being recorded as if it were the recipe. A probe's lr is ``None``: its grid is in
``probe.grid``.
"""

from __future__ import annotations

import json
import math
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

from mae_transfer.matrix.plan.planner import Cell, package_versions
from mae_transfer.matrix.spec.pretrain_stage import METRICS as PRETRAIN_METRICS
from mae_transfer.matrix.spec.pretrain_stage import PRETRAIN_TASK
from mae_transfer.matrix.run.files import CELL_NAME, RESULT_NAME
from mae_transfer.paths import checkout_root
from mae_transfer.matrix.spec.tasks import PROBE_PROTOCOLS, TASKS
from mae_transfer.records import LOAD_REPORT_NAME, atomic_write_json, read_load_report

SCHEMA = 2
LOAD_COUNTS = ("matched", "missing", "dropped", "resized")


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
        # mmdet's CocoMetric logs "The testing results of the whole dataset is empty" and returns
        # nothing when the detector kept no box above its score threshold on the whole val set
        raise ResultError(f"{path}: key 'metrics': no numeric metrics found (a detector that kept no detection "
                          "above its score threshold on the validation set gets none from mmdet's CocoMetric: "
                          "see 'testing results ... empty' in the log)")
    return numeric


def leaderboard_metrics(task: str, raw: dict[str, float], source: str) -> dict[str, float]:
    """Map raw metric keys to the leaderboard's names for ``task`` (first candidate found wins)."""
    names = PRETRAIN_METRICS if task == PRETRAIN_TASK else TASKS[task].metrics
    metrics = {}
    for name, candidates in names.items():
        for key in candidates:
            found = next((v for k, v in raw.items() if k == key or k.endswith("/" + key)), None)
            if found is not None:
                metrics[name] = found
                break
    if not metrics:
        expected = {name: list(c) for name, c in names.items()}
        raise ResultError(f"{source}: none of the expected metric keys for {task} found; expected {expected}, "
                          f"found {sorted(raw)}")
    return metrics


def _git(*args: str) -> str | None:
    root = checkout_root()
    if root is None:  # an installed package: no repository to describe
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
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


def dumped_config(train_dir: Path, config: str) -> Path:
    """The config mmengine dumped into the training work dir (named after the cell's config)."""
    named = train_dir / Path(config).name
    if named.is_file():
        return named
    dumped = sorted(train_dir.glob("*.py"))
    if not dumped:
        raise ResultError(f"{train_dir}: no dumped config (*.py); cannot read the batch the run used")
    return dumped[0]


def run_batch(train_dir: Path, config: str, world_size: int) -> dict[str, Any]:
    """The batch and lr a finished run used: per-process batch x processes x gradient accumulation.

    Raises:
        ResultError: the dumped config is missing or lacks the keys, naming the file.
    """
    path = dumped_config(train_dir, config)
    from mae_transfer.matrix.plan.config_files import read_config

    try:
        cfg = read_config(path, import_custom_modules=False)
        per_process = int(cfg.train_dataloader.batch_size)
        accumulation = int(cfg.get("optim_wrapper", {}).get("accumulative_counts", 1))
        # a probe has a grid of lrs (probe.json), not one
        lr = None if "probe" in cfg and "optim_wrapper" not in cfg else float(cfg.optim_wrapper.optimizer.lr)
    except Exception as error:  # noqa: BLE001 - any parse or key error is named with the file
        raise ResultError(f"{path}: cannot read train_dataloader.batch_size, optim_wrapper.accumulative_counts "
                          f"and optim_wrapper.optimizer.lr: {error}") from error
    return {"effective_batch": per_process * max(world_size, 1) * accumulation, "per_gpu_batch": per_process,
            "accumulation": accumulation, "lr": lr, "config": str(path)}


def check_batch(cell: Cell, run: dict[str, Any]) -> None:
    """Raise ResultError when the run's batch or lr differs from the cell's plan."""
    if cell.effective_batch is None:
        return
    planned = (cell.effective_batch, cell.per_gpu_batch, cell.accumulation)
    used = (run["effective_batch"], run["per_gpu_batch"], run["accumulation"])
    if planned != used:
        raise ResultError(
            f"cell {cell.label}: effective batch mismatch: planned {cell.effective_batch} = {cell.processes} process(es) x "
            f"{cell.per_gpu_batch} per GPU x {cell.accumulation} accumulation, the run used {run['effective_batch']} = "
            f"{run['per_gpu_batch']} per process x accumulation {run['accumulation']} (read from {run['config']})")
    if cell.lr is not None and (run["lr"] is None or not math.isclose(run["lr"], cell.lr, rel_tol=1e-6)):
        raise ResultError(f"cell {cell.label}: lr mismatch: planned {cell.lr:g}, the run used {run['lr']} "
                          f"(optim_wrapper.optimizer.lr in {run['config']})")


def pretrain_outputs(cell: Cell, train_dir: Path) -> dict[str, Any]:
    """A pre-training cell's evaluated checkpoints (``{epoch: path}``), each checked to exist.

    Raises:
        ResultError: a checkpoint its transfer cells wait for was not written.
    """
    from mae_transfer.pretrain.files import pretrain_checkpoint_path

    epochs = next((v for k, v in cell.cfg_options.items() if k.endswith(".save_epochs")), [])
    written = {str(epoch): str(pretrain_checkpoint_path(train_dir, int(epoch))) for epoch in epochs}
    missing = [path for path in written.values() if not Path(path).is_file()]
    if missing:
        raise ResultError(f"cell {cell.label}: pre-training finished without the checkpoints its transfer cells "
                          f"evaluate: {missing}")
    return {"pretrain_checkpoints": written}


def checkpoint_provenance(cell: Cell, train_dir: Path) -> dict[str, Any]:
    """The pretrained checkpoint's sha256 and the summary of its load in the trainer.

    Raises:
        ResultError: the checkpoint cannot be read, or the trainer recorded no load report.
    """
    from mae_transfer.matrix.plan.digests import DigestCache

    cache = DigestCache()
    try:
        digest = cache.digest(Path(cell.checkpoint))
    except OSError as error:
        raise ResultError(f"cell {cell.label}: cannot hash the checkpoint {cell.checkpoint}: {error}") from error
    cache.save()
    load = read_load_report(train_dir)
    if load is None:
        raise ResultError(f"{train_dir / LOAD_REPORT_NAME}: missing or unreadable; the trainer recorded no "
                          "pretrained load")
    return {"checkpoint_sha256": digest, "load_report": load}


PROBE_NAME = "probe.json"  # written by mae_transfer.integrations.probes (MAETransferProbeRunner)
PROBE_KEYS = ("protocol", "grid", "points", "chosen", "holdout", "refit", "processes", "cache", "val_images")


def probe_record(cell: Cell, train_dir: Path) -> dict[str, Any] | None:
    """A probe cell's grid, every point's hold-out score, the choice and the hold-out digest
    (``train/probe.json``); None for other cells.

    Raises:
        ResultError: a probe cell's run wrote no readable ``probe.json``.
    """
    if cell.protocol not in PROBE_PROTOCOLS:
        return None
    payload = read_json(train_dir / PROBE_NAME)
    missing = [key for key in PROBE_KEYS if key not in payload]
    if missing:
        raise ResultError(f"{train_dir / PROBE_NAME}: keys {missing} missing; expected {list(PROBE_KEYS)}")
    return {key: payload[key] for key in PROBE_KEYS}


def build_result(cell: Cell, train_dir: Path, world_size: int, raw: dict[str, float],
                 evaluated_step: int | None) -> dict[str, Any]:
    """The ``result.json`` payload of a finished cell.

    Raises:
        ResultError: metrics are missing, the run's batch or lr differs from the plan, or the
            checkpoint's provenance (sha256, load report) cannot be read.
    """
    run = run_batch(train_dir, cell.config, world_size)
    check_batch(cell, run)
    checkpoint = pretrain_outputs(cell, train_dir) if cell.task == PRETRAIN_TASK else checkpoint_provenance(cell, train_dir)
    probe = probe_record(cell, train_dir)
    return {
        **({"probe": probe} if probe is not None else {}),
        "schema": SCHEMA,
        "cell": {
            "id": cell.id, "label": cell.label, "backbone": cell.backbone, "arch": cell.arch, "task": cell.task,
            "recipe": cell.recipe, "protocol": cell.protocol, "resolution": cell.resolution, "seed": cell.seed,
            "config": cell.config, "checkpoint": cell.checkpoint, "pretrain": cell.pretrain,
        },
        "metrics": leaderboard_metrics(cell.task, raw, str(train_dir / "metrics.json")),
        "raw_metrics": raw,
        "provenance": {
            **git_provenance(),
            "packages": package_versions(),
            "device": device_description(world_size if cell.resources.gpus_per_cell else 0),
            "gpus": world_size if cell.resources.gpus_per_cell else 0,
            "processes": world_size,
            "effective_batch": run["effective_batch"],
            "per_gpu_batch": run["per_gpu_batch"],
            "accumulation": run["accumulation"],
            "lr": run["lr"],
            "recipe_batch": cell.recipe_batch,
            "recipe_lr": cell.recipe_lr,
            "off_recipe": cell.off_recipe,
            "off_recipe_reason": cell.off_recipe_reason,
            "eval_mode": cell.eval_mode,
            "checkpoint_policy": cell.checkpoint_policy,
            "evaluated_step": evaluated_step,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **checkpoint,
        },
    }


def write_result(cell_dir: Path, payload: dict[str, Any]) -> Path:
    """Write ``result.json`` atomically (`mae_transfer.records.atomic_write_json`)."""
    path = cell_dir / RESULT_NAME
    atomic_write_json(path, payload, failpoint="result_write")
    return path


def _check_metric(path: Path, key: str, value: Any, percent: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ResultError(f"{path}: key {key!r}: expected a number, got {value!r}")
    if not math.isfinite(value):
        raise ResultError(f"{path}: key {key!r}: {value!r} is not a finite number (a diverged or broken run)")
    if percent and not 0.0 <= value <= 100.0:
        raise ResultError(f"{path}: key {key!r}: {value!r} is outside 0..100 (metrics are in percent)")


def validate_result(path: Path, cell_id: str | None = None) -> dict[str, Any]:
    """A result file's payload, checked for the keys the leaderboard reads.

    Every metric must be a finite number in 0..100 (percent); ``raw_metrics`` must be finite.
    The result must belong to its cell: ``cell.id`` must equal ``cell_id`` when given, else the
    id in the ``cell.json`` next to it (when there is one), and the directory's name must end in
    the id's first ten characters (the planner's ``LABEL-ID10``) -- a result copied from another
    cell is refused.

    Raises:
        ResultError: naming the file, the key and what was expected.
    """
    return check_result(read_json(path), path, cell_id)


def check_result(payload: dict[str, Any], path: Path, cell_id: str | None = None) -> dict[str, Any]:
    """The checks of :func:`validate_result` on a payload (``path``: where it is or will be written)."""
    for key in ("cell", "metrics", "provenance"):
        if not isinstance(payload.get(key), dict):
            raise ResultError(f"{path}: key {key!r}: missing or not a mapping")
    for key in ("id", "backbone", "task", "recipe", "seed"):
        if key not in payload["cell"]:
            raise ResultError(f"{path}: key 'cell.{key}': missing")
    if not payload["metrics"]:
        raise ResultError(f"{path}: key 'metrics': empty")
    for name, value in payload["metrics"].items():
        _check_metric(path, f"metrics.{name}", value, percent=True)
    raw = payload.get("raw_metrics", {})
    if not isinstance(raw, dict):
        raise ResultError(f"{path}: key 'raw_metrics': expected a mapping")
    for name, value in raw.items():
        _check_metric(path, f"raw_metrics.{name}", value, percent=False)
    if payload["cell"]["task"] == PRETRAIN_TASK:
        written = payload["provenance"].get("pretrain_checkpoints")
        if not isinstance(written, dict) or not all(isinstance(p, str) for p in written.values()):
            raise ResultError(f"{path}: key 'provenance.pretrain_checkpoints': expected a mapping of epochs to "
                              f"checkpoint paths, got {written!r}")
    elif payload.get("schema", 1) >= 2:
        _check_checkpoint_provenance(path, payload["provenance"])
    recorded = payload["cell"]["id"]
    expected = cell_id if cell_id is not None else _cell_json_id(path.parent)
    if expected is not None and recorded != expected:
        raise ResultError(f"{path}: key 'cell.id': {recorded!r} is another cell's result; this directory's cell is "
                          f"{expected!r}")
    if not (isinstance(recorded, str) and len(recorded) >= 10 and path.parent.name.endswith("-" + recorded[:10])):
        raise ResultError(f"{path}: key 'cell.id': {recorded!r} does not match the directory {path.parent.name!r} "
                          "(LABEL-ID10); a result copied from another cell is refused")
    return payload


def _check_checkpoint_provenance(path: Path, provenance: dict[str, Any]) -> None:
    """Schema 2: the checkpoint's sha256 (64 hex digits) and the load summary's format and counts."""
    digest = provenance.get("checkpoint_sha256")
    if not (isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
        raise ResultError(f"{path}: key 'provenance.checkpoint_sha256': expected 64 hex digits, got {digest!r}")
    load = provenance.get("load_report")
    if not isinstance(load, dict) or not isinstance(load.get("format"), str):
        raise ResultError(f"{path}: key 'provenance.load_report': expected a mapping with 'format' and the counts "
                          f"{list(LOAD_COUNTS)}, got {load!r}")
    for key in LOAD_COUNTS:
        if isinstance(load.get(key), bool) or not isinstance(load.get(key), int) or load[key] < 0:
            raise ResultError(f"{path}: key 'provenance.load_report.{key}': expected a count, got {load.get(key)!r}")


def _cell_json_id(cell_dir: Path) -> str | None:
    """The id in ``cell_dir/cell.json`` (None when there is no readable one)."""
    try:
        payload = json.loads((cell_dir / CELL_NAME).read_text())
    except (OSError, ValueError):
        return None
    found = payload.get("id") if isinstance(payload, dict) else None
    return found if isinstance(found, str) else None
