"""Per-GPU batch, gradient accumulation, lr and schedule of a cell, derived from its recipe.

For a cell on ``nodes x GPUs`` processes (``gpus_per_cell: 0`` is one CPU process per node) the
planner needs ``processes x per_gpu_batch x accumulation == batch``, with ``per_gpu_batch`` at
most the recipe's memory-proven per-GPU batch (and the resources' ``max_per_gpu_batch``). The
batch is the recipe's, or one the matrix sets on purpose (``batch: N``; then the lr follows the
linear scaling rule and the cell is off-recipe). When no split exists the cell is refused with
the arithmetic in the message.

Iteration-based loops (COCO, ADE20K) count dataloader iterations: mmengine's
``accumulative_counts`` steps the optimizer every k iterations but divides nothing else, and
``ParamSchedulerHook`` steps iteration-based schedulers every iteration. So with accumulation k
the loop's ``max_iters`` and every iteration-valued key (validation and checkpoint intervals,
scheduler begin/end/milestones/T_max/step_size) are multiplied by k; with a batch other than the recipe's
the number of optimizer steps is rescaled too, keeping the epochs (images seen) of the recipe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mae_transfer.matrix.spec.recipes import Recipe
from mae_transfer.matrix.spec.matrix_spec import Resources

LR_KEY = "optim_wrapper.optimizer.lr"
BATCH_KEY = "train_dataloader.batch_size"
ACCUMULATION_KEY = "optim_wrapper.accumulative_counts"
_INFINITE = 10**8  # mmengine schedulers default ``end`` to 1e9: "until the end", never rescaled


class BatchError(ValueError):
    """A cell's resources cannot reach its batch; the message carries the arithmetic."""


@dataclass(frozen=True)
class BatchPlan:
    """How one cell reaches its batch, and the lr it trains at."""

    processes: int
    per_gpu_batch: int
    accumulation: int
    effective_batch: int
    lr: float
    recipe_batch: int
    recipe_lr: float
    off_recipe: bool
    off_recipe_reason: str | None

    def scaled_iterations(self, iterations: int) -> int:
        """Dataloader iterations that stand for ``iterations`` of the recipe at its batch.

        The optimizer steps keep the recipe's images (``iterations x recipe_batch /
        effective_batch``, rounded), and each step takes ``accumulation`` iterations.
        """
        steps = round(iterations * self.recipe_batch / self.effective_batch)
        return steps * self.accumulation

    @property
    def rescales_iterations(self) -> bool:
        return self.accumulation != 1 or self.effective_batch != self.recipe_batch


def processes_of(resources: Resources) -> int:
    """Training processes of a cell: one per GPU on every node, one per node without GPUs."""
    return resources.nodes * max(resources.gpus_per_cell, 1)


def describe_processes(resources: Resources) -> str:
    """``2 nodes x 8 GPUs = 16 processes`` (or ``1 node x 1 CPU process``)."""
    nodes = f"{resources.nodes} node{'s' if resources.nodes > 1 else ''}"
    if resources.gpus_per_cell == 0:
        total = processes_of(resources)
        return f"{nodes} x 1 CPU process" + (f" = {total} processes" if total > 1 else "")
    gpus = f"{resources.gpus_per_cell} GPU{'s' if resources.gpus_per_cell > 1 else ''}"
    total = processes_of(resources)
    return f"{nodes} x {gpus} = {total} process{'es' if total > 1 else ''}"


def split_batch(batch: int, resources: Resources, max_per_gpu: int, what: str) -> tuple[int, int]:
    """(per-GPU batch, accumulation) with ``processes x per_gpu x accumulation == batch``.

    The fewest accumulation steps whose per-GPU batch is at most ``max_per_gpu`` win.

    Raises:
        BatchError: the processes exceed the batch or cannot split it evenly.
    """
    processes = processes_of(resources)
    where = describe_processes(resources)
    if processes > batch:
        raise BatchError(f"{where} exceed {what} {batch} (every process needs at least one image per step)")
    if batch % processes:
        raise BatchError(f"{where} cannot split {what} {batch} evenly "
                         f"({batch} / {processes} = {batch / processes:g} images per process)")
    per_process = batch // processes
    accumulation = next(k for k in range(1, per_process + 1)
                        if per_process % k == 0 and per_process // k <= max_per_gpu)
    return per_process // accumulation, accumulation


def plan_batch(recipe: Recipe, resources: Resources, batch: int | None = None, lr_override: float | None = None,
               batch_key: str = "batch") -> BatchPlan:
    """The batch plan of a cell from its recipe, resources and the matrix's choices.

    Args:
        recipe: the cell's declared recipe.
        resources: the cell's nodes and GPUs (and an optional per-GPU batch limit).
        batch: a total batch the matrix sets on purpose (None: the recipe's).
        lr_override: an lr the matrix's overrides set (None: the recipe's rule).
        batch_key: the matrix key that set ``batch``, for messages.

    Raises:
        BatchError: no per-GPU batch x accumulation reaches the batch on these resources.
    """
    limit = recipe.max_per_gpu if resources.max_per_gpu_batch is None else min(recipe.max_per_gpu,
                                                                                resources.max_per_gpu_batch)
    target = recipe.batch if batch is None else batch
    what = "the recipe batch" if target == recipe.batch else f"the batch set in {batch_key}"
    per_gpu, accumulation = split_batch(target, resources, limit, what)
    reasons = []
    lr = recipe.lr_at(target)
    if target != recipe.batch:
        reasons.append(f"batch {target} set in {batch_key} (recipe batch {recipe.batch}); lr by the linear "
                       f"scaling rule {recipe.lr:g} x {target} / {recipe.batch} = {lr:g}")
    if lr_override is not None and not math.isclose(lr_override, lr, rel_tol=1e-9):
        reasons.append(f"lr {lr_override:g} set in the overrides ({LR_KEY}; the recipe's rule gives {lr:g})")
        lr = lr_override
    return BatchPlan(
        processes=processes_of(resources), per_gpu_batch=per_gpu, accumulation=accumulation,
        effective_batch=target, lr=lr, recipe_batch=recipe.batch, recipe_lr=recipe.lr,
        off_recipe=bool(reasons), off_recipe_reason="; ".join(reasons) or None,
    )


def batch_options(plan: BatchPlan) -> dict[str, Any]:
    """The config keys that carry a batch plan to the training run (the lr only when it changes)."""
    options: dict[str, Any] = {BATCH_KEY: plan.per_gpu_batch, ACCUMULATION_KEY: plan.accumulation}
    if not math.isclose(plan.lr, plan.recipe_lr, rel_tol=1e-9):
        options[LR_KEY] = plan.lr
    return options


def iteration_options(cfg: Any, plan: BatchPlan) -> dict[str, Any]:
    """Rescaled iteration-valued keys of a parsed config (mmengine ``Config``) for ``plan``.

    Covers ``train_cfg.max_iters``/``val_interval``/``val_begin``, every iteration-based
    scheduler's ``begin``/``end``/``milestones``/``T_max``/``step_size``/``total_steps`` and an
    iteration-based checkpoint interval. Epoch-based loops and schedulers are left alone
    (epochs do not change).
    """
    if not plan.rescales_iterations:
        return {}
    options: dict[str, Any] = {}
    train_cfg = cfg.get("train_cfg") or {}
    if "max_iters" not in train_cfg:
        return {}
    for key in ("max_iters", "val_interval", "val_begin"):
        if isinstance(train_cfg.get(key), int):
            options[f"train_cfg.{key}"] = plan.scaled_iterations(train_cfg[key])
    schedulers = cfg.get("param_scheduler") or []
    indexed = [("param_scheduler", schedulers)] if isinstance(schedulers, dict) else [
        (f"param_scheduler.{i}", s) for i, s in enumerate(schedulers)]
    for prefix, scheduler in indexed:
        if scheduler.get("by_epoch", True):
            continue
        for key in ("begin", "end", "T_max", "step_size", "total_steps"):
            value = scheduler.get(key)
            if isinstance(value, int) and 0 < value < _INFINITE:
                options[f"{prefix}.{key}"] = plan.scaled_iterations(value)
        if isinstance(scheduler.get("milestones"), (list, tuple)):
            options[f"{prefix}.milestones"] = [plan.scaled_iterations(m) for m in scheduler["milestones"]]
    checkpoint = (cfg.get("default_hooks") or {}).get("checkpoint") or {}
    if checkpoint.get("by_epoch") is False and isinstance(checkpoint.get("interval"), int):
        options["default_hooks.checkpoint.interval"] = plan.scaled_iterations(checkpoint["interval"])
    return options
