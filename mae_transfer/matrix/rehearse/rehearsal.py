"""``mae-transfer run MATRIX --rehearse``: every cell for a few steps at its real shapes, here.

A rehearsal takes the plan of the real planner and runs each cell as a real cell runs
(``python -m mae_transfer.train`` on the cell's resolved config, the command
:func:`mae_transfer.matrix.run.cell.train_command` builds) with rehearsal overrides merged in
(:func:`~mae_transfer.matrix.rehearse.inputs.run_overrides`): a few training steps, a few
evaluation images, no checkpoints, accumulation 1. The per-GPU batch, input size, window and
global blocks, position tables, label space and pipelines stay the config's. Cells planned on
more than one process rehearse in 2-process DDP (``torch.distributed.run``; gloo on CPU).

Everything is written under ``WORK_ROOT/rehearsal/`` (one directory per cell,
``<label>-<id[:10]>``, plus generated data and checkpoints): a rehearsal never touches a cell's
work dir, state or result, so ``status`` and ``run`` never take it for a run.

Each cell's row (:class:`RehearsalRow`) says ok or failed (with the error tail naming the cell,
the config and the reason), seconds per step, peak memory per process, parameters, the planned
effective batch and lr, the processes rehearsed, the planner's GPU-hour estimate and a
projection from the measured step time, and notes (depth cut, CPU fallbacks, generated data or
checkpoint, forced accumulation). A cell the planner refused is a failed row carrying the
planner's arithmetic.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from mae_transfer.matrix.run import launch
from mae_transfer.matrix.plan.resolve import write_cell_config
from mae_transfer.matrix.run.cell import train_command
from mae_transfer.matrix.rehearse.depth_cut import DepthCutError, plan_depth_cut
from mae_transfer.matrix.spec.pretrain_stage import PRETRAIN_TASK
from mae_transfer.matrix.plan.planner import Cell, Plan
from mae_transfer.matrix.spec.recipes import TRAIN_IMAGES
from mae_transfer.matrix.rehearse.inputs import (
    RehearsalInputError,
    choose_checkpoint,
    choose_data,
    merge_options,
    rehearsal_root,
    rehearsed_batch,
    run_overrides,
)
from mae_transfer.matrix.run.files import tail
from mae_transfer.matrix.spec.tasks import TASKS
from mae_transfer.paths import config_name

logger = logging.getLogger(__name__)

LOG_NAME = "rehearsal.log"


@dataclass(frozen=True)
class RehearsalOptions:
    """How to rehearse (the ``run --rehearse`` options).

    Attributes:
        steps: training iterations per cell.
        eval_images: evaluation images per cell (all processes together).
        nproc: processes for cells planned on more than one: ``N``, or ``GLOB=N`` entries
            (comma-separated; the first matching glob wins, a bare ``N`` sets the default 2).
        generate_missing: replace a missing checkpoint by a generated one of the declared arch.
        max_depth: cut backbones to this depth where every shape is kept; ``"min"``: to each
            cell's smallest such depth; None: no cut.
        data: ``auto`` (real data where the declared root exists), ``generated`` or ``real``.
        timeout: seconds per cell before it is stopped and failed.
        max_batch: train at most this many images per process (the table says so, and no
            GPU-hours are projected from such a step); None: the plan's per-GPU batch.
    """

    steps: int = 2
    eval_images: int = 2
    nproc: str | None = None
    generate_missing: bool = False
    max_depth: int | str | None = None
    data: str = "auto"
    timeout: float = 3600.0
    max_batch: int | None = None


@dataclass
class RehearsalRow:
    """One cell's rehearsal outcome (``--json`` prints these as dicts)."""

    cell: str
    id: str | None
    config: str
    status: str = "failed"
    error: str = ""
    seconds_per_step: float | None = None
    peak_memory_mib: list[float] = field(default_factory=list)
    memory_measure: str | None = None
    params: int | None = None
    trainable_params: int | None = None
    effective_batch: int | None = None
    per_gpu_batch: int | None = None
    per_gpu_batch_rehearsed: int | None = None
    accumulation: int | None = None
    lr: float | None = None
    processes: int | None = None
    processes_rehearsed: int | None = None
    gpu_hours: float | None = None
    projected_hours: float | None = None
    projected_on: str | None = None
    depth: int | None = None
    depth_rehearsed: int | None = None
    data: str | None = None
    checkpoint: str | None = None
    deviations: list[dict] = field(default_factory=list)
    eval_metrics: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float | None = None
    rehearsal_dir: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def rehearsal_processes(cell: Cell, spec: str | None) -> int:
    """Processes a cell rehearses on: 1 for a one-process cell, else 2 or what ``spec`` says."""
    if cell.processes <= 1:
        return 1
    default = 2
    for part in (p.strip() for p in (spec or "").split(",") if p.strip()):
        if "=" in part:
            pattern, count = part.rsplit("=", 1)
            pattern = pattern if any(ch in pattern for ch in "*?[") else f"*{pattern}*"
            if fnmatchcase(cell.label, pattern):
                return max(1, min(int(count), cell.processes))
        else:
            default = int(part)
    return max(1, min(default, cell.processes))


def _parsed_config(cell: Cell):
    from mmengine.config import Config

    cfg = Config.fromfile(cell.config, import_custom_modules=False)
    cfg.merge_from_dict(dict(cell.cfg_options))
    return cfg


def _planned_iterations(cell: Cell, cfg) -> tuple[str, int]:
    """(loop kind, dataloader iterations per process of the planned run)."""
    train_cfg = cfg.get("train_cfg") or {}
    if "max_iters" in train_cfg:
        return "iter", int(train_cfg["max_iters"])
    per_epoch = TRAIN_IMAGES[cell.task] // (cell.processes * (cell.per_gpu_batch or 1))
    return "epoch", int(train_cfg.get("max_epochs", 1)) * per_epoch


def _deviation_notes(deviations: list[dict]) -> list[str]:
    notes = []
    if any(d.get("key") == "optim_wrapper.type" for d in deviations):
        notes.append("AMP -> fp32 (no GPU)")
    sync = [d for d in deviations if d.get("from") in ("SyncBN", "MMSyncBN", "syncbn") or d.get("key") == "sync_bn"]
    if sync:
        notes.append(f"SyncBN -> BN (no GPU; {len(sync)} place{'s' if len(sync) > 1 else ''})")
    if any(d.get("key") == "env_cfg.dist_cfg.backend" for d in deviations):
        notes.append("DDP on gloo, CPU")
    return notes


class Rehearsal:
    """Rehearses the cells of a plan one after the other."""

    def __init__(self, plan: Plan, options: RehearsalOptions) -> None:
        self.plan = plan
        self.options = options
        self.root = rehearsal_root(plan)

    def run(self) -> list[RehearsalRow]:
        """A row per refused cell, then a row per planned cell (one cell's failure stops no other)."""
        rows = [RehearsalRow(cell=r.cell, id=None, config=r.config, error=r.message, notes=["refused by the planner"])
                for r in self.plan.refused]
        needs = self._data_needs()
        for cell in self.plan.cells:
            if cell.task == PRETRAIN_TASK:
                # not rehearsed: its transfer cells rehearse with a generated checkpoint (--generate-missing)
                logger.warning("rehearsal: the pre-training cell %s is not rehearsed", cell.label)
                continue
            started = time.monotonic()
            row = RehearsalRow(cell=cell.label, id=cell.id, config=config_name(cell.config))
            try:
                self.rehearse(cell, row, needs)
            except (RehearsalInputError, DepthCutError, OSError, ValueError, KeyError) as error:
                row.status, row.error = "failed", f"cell {cell.label} ({row.config}): {error}"
            row.seconds = round(time.monotonic() - started, 1)
            logger.info("rehearsal of %s: %s (%.0f s)", cell.label, row.status, row.seconds)
            if row.status != "ok":
                logger.error("%s", row.error)
            rows.append(row)
        return rows

    def _data_needs(self) -> dict[str, tuple[int, int]]:
        """Per dataset kind: (train, val) images the generated set must hold for every cell."""
        needs: dict[str, tuple[int, int]] = {}
        for cell in (c for c in self.plan.cells if c.task != PRETRAIN_TASK):
            batch = rehearsed_batch(cell, self.options.max_batch)
            images = self.options.steps * batch * rehearsal_processes(cell, self.options.nproc)
            train, val = needs.get(cell.dataset, (2, self.options.eval_images))
            needs[cell.dataset] = (max(train, images), val)
        return needs

    def rehearse(self, cell: Cell, row: RehearsalRow, needs: dict[str, tuple[int, int]]) -> None:
        """Fill ``row`` with the rehearsal of ``cell``."""
        opts = self.options
        nproc = rehearsal_processes(cell, opts.nproc)
        row.effective_batch, row.per_gpu_batch, row.accumulation = cell.effective_batch, cell.per_gpu_batch, cell.accumulation
        row.lr, row.processes, row.processes_rehearsed, row.gpu_hours = cell.lr, cell.processes, nproc, cell.gpu_hours
        cfg = _parsed_config(cell)
        loop, planned_iterations = _planned_iterations(cell, cfg)
        model = cfg.get("model") or {}
        cut = plan_depth_cut(model.get("backbone") or {}, model.get("protocol"), opts.max_depth)
        row.depth, row.depth_rehearsed = cut.depth, cut.cut_to
        row.notes += cut.notes
        checkpoint, how = choose_checkpoint(self.plan, cell, cut.cut_to if cut.cut else None, opts.generate_missing)
        row.checkpoint = how
        if how != "real checkpoint":
            row.notes.append(how)
        data = choose_data(self.plan, cell, opts.data, *needs[cell.dataset])
        row.data = f"{data.source} ({data.root})"
        row.notes.append(data.note)
        overrides = {key: checkpoint for key in TASKS[cell.task].checkpoint_keys}
        if how != "real checkpoint":  # a generated stand-in (MAE format): the forced format is the real file's
            overrides.update({key: None for key in TASKS[cell.task].format_keys})
        overrides.update(data.options)
        overrides.update(cut.options)
        overrides.update(run_overrides(cell, loop, opts.steps, nproc, opts.eval_images, opts.max_batch))
        row.per_gpu_batch_rehearsed = rehearsed_batch(cell, opts.max_batch)
        capped = row.per_gpu_batch_rehearsed != (cell.per_gpu_batch or 1)
        if capped:
            row.notes.append(f"per-GPU batch {cell.per_gpu_batch} -> {row.per_gpu_batch_rehearsed} (--rehearse-batch: "
                             "s/step and peak memory are at the smaller batch; no GPU-hours projected)")
        if cell.accumulation > 1:
            row.notes.append(f"accumulation {cell.accumulation} -> 1 (peak memory does not depend on it)")
        if nproc != cell.processes:
            row.notes.append(f"{cell.processes} processes -> {nproc}")
        if cell.test_config is not None:
            row.notes.append(f"test-only config {config_name(cell.test_config)} not rehearsed")
        out = self.root / f"{cell.label}-{cell.id[:10]}"
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        row.rehearsal_dir = str(out)
        # A rehearsal is not a run: it launches on its own process count, bypassing the cell
        # runner's process_mismatch check (which refuses launches that would change the
        # planned batch), and reports the planned batch and lr from the plan instead.
        rehearsed = replace(cell, cfg_options=merge_options(cell.cfg_options, overrides), work_dir=str(out),
                            checkpoint_policy="last")
        write_cell_config(rehearsed, "pytorch" if nproc > 1 else "none")  # out/config.py
        command = train_command(rehearsed, "pytorch" if nproc > 1 else "none", nproc, resume=False,
                                extra=("--rehearsal",))
        code = self._launch(command, out, nproc)
        self._collect(cell, row, out, nproc, code, loop, planned_iterations, cut.cut)
        if capped:
            row.projected_hours, row.projected_on = None, "not projected: the per-GPU batch was capped"

    def _launch(self, command: list[str], out: Path, nproc: int) -> int | None:
        """Run the command with its output in ``out/rehearsal.log``; None when it timed out."""
        env = launch.child_env(threads=(os.cpu_count() or 1) // nproc)
        with (out / LOG_NAME).open("w") as log:
            log.write("[mae-transfer rehearsal] " + " ".join(command) + "\n")
            log.flush()
            process = launch.start(command, log, env=env, start_new_session=True)
            try:
                return process.wait(timeout=self.options.timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait()
                return None

    def _collect(self, cell: Cell, row: RehearsalRow, out: Path, nproc: int, code: int | None, loop: str,
                 planned_iterations: int, cut: bool) -> None:
        train_dir = out / "train"
        records = [json.loads(p.read_text()) for p in sorted(train_dir.glob("rehearsal_rank*.json"))]
        deviations_file = train_dir / "deviations.json"
        row.deviations = json.loads(deviations_file.read_text()) if deviations_file.is_file() else []
        row.notes += _deviation_notes(row.deviations)
        if records:
            per_rank = []
            for record in records:
                times = record["step_seconds"][1:] if len(record["step_seconds"]) > 1 else record["step_seconds"]
                if times:
                    per_rank.append(sum(times) / len(times))
            row.seconds_per_step = round(sum(per_rank) / len(per_rank), 3) if per_rank else None
            row.peak_memory_mib = [round(r["peak_memory_mib"], 1) for r in records]
            row.memory_measure = records[0]["memory_measure"]
            row.params, row.trainable_params = records[0]["params"], records[0]["trainable_params"]
            evaluations = records[0].get("evaluations") or []
            row.eval_metrics = evaluations[-1]["metrics"] if evaluations else []
            if evaluations and not row.eval_metrics:
                row.notes.append("evaluation ran but returned no metrics (e.g. no detections from the untrained heads)")
        if row.seconds_per_step is not None:
            device = "GPU" if records[0]["device"] == "cuda" else "CPU"
            row.projected_hours = round(planned_iterations * row.seconds_per_step * cell.processes / 3600.0, 1)
            what = "iterations" if loop == "iter" else "iterations (epochs x train set / batch)"
            row.projected_on = (f"measured {device} step time of this machine x {planned_iterations:,} {what} x "
                                f"{cell.processes} processes" + (" (cut depth: not the full model)" if cut else ""))
        problems = []
        if code is None:
            problems.append(f"stopped after {self.options.timeout:g} s (--rehearse-timeout)")
        elif code != 0:
            problems.append(f"mae_transfer.train exited with code {code}")
        if code == 0 and len(records) != nproc:
            problems.append(f"{len(records)} of {nproc} processes wrote their measurements")
        if records and not all(r["losses_finite"] for r in records):
            problems.append("a loss was not finite (or none was logged)")
        if code == 0 and records and not all(r["evaluated"] for r in records):
            problems.append("no evaluation ran")
        if records and any(r["iterations"] < self.options.steps for r in records):
            problems.append(f"fewer than {self.options.steps} training steps ran")
        if problems:
            row.status = "failed"
            row.error = (f"cell {cell.label} ({row.config}): {'; '.join(problems)}; log {out / LOG_NAME}:\n"
                         + tail(out / LOG_NAME, lines=25))
        else:
            row.status = "ok"


def rehearse_plan(plan: Plan, options: RehearsalOptions) -> list[RehearsalRow]:
    """Rehearse every cell of ``plan`` (and list its refused cells as failed)."""
    return Rehearsal(plan, options).run()
