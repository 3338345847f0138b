"""What ``run`` checks about the cells it is about to start, before it starts any.

A checkpoint that does not exist or holds NaN/inf weights, and a cell planned for more processes
than the executor starts (two nodes on the local executor), fail every attempt of their cells;
found inside a cell they cost an attempt each and leave the others running against a broken
matrix. ``run`` refuses them all up front instead (`PreflightError`, one line naming the matrix
file and key), and ``doctor`` reports the same.
"""

from __future__ import annotations

from pathlib import Path

from mae_transfer.matrix.plan.planner import Cell, Plan
from mae_transfer.matrix.run.cell import process_mismatch
from mae_transfer.matrix.run.executors.local import processes_for
from mae_transfer.matrix.spec.matrix_spec import SpecError


class PreflightError(SpecError):
    """A cell ``run`` was about to start cannot train; nothing was started and no attempt spent."""


def checkpoint_problem(path: Path, fmt: str = "auto") -> str | None:
    """Why the checkpoint at ``path`` cannot be loaded (missing, unreadable, non-finite), or None."""
    if not path.exists():  # a file, or a HuggingFace directory
        return f"{path} does not exist"
    from mae_transfer.checkpoints import CheckpointError
    from mae_transfer.checkpoints.load import open_checkpoint, refuse_non_finite

    try:
        refuse_non_finite(open_checkpoint(path, None if fmt == "auto" else fmt))
    except CheckpointError as error:
        return str(error)
    return None


def _resources_key(plan: Plan, cell: Cell) -> str:
    """The matrix key that set a cell's resources (a task's, a stage's, else the matrix's)."""
    for entry in plan.spec.tasks:
        if entry.task == cell.task and entry.resources is not None and entry.resources == cell.resources:
            return f"{entry.key}.resources"
    for backbone in plan.spec.backbones:
        stage = backbone.pretrain
        if stage is not None and cell.pretrain and cell.pretrain.get("stage") == backbone.name and stage.resources:
            return f"{stage.key}.resources"
    return "resources"


def preflight(plan: Plan, cells: list[Cell], executor: str, nproc_per_node: int | None = None) -> None:
    """Refuse the run when a cell it would start cannot train (see the module docstring).

    Generated checkpoints and those of pre-training stages are written by the run itself and not
    checked here.

    Raises:
        PreflightError: naming the matrix file, the key, the cell and the reason; with a count of
            the other cells refused.
    """
    problems: list[tuple[str, str]] = []
    checked: dict[str, str | None] = {}
    keys = {backbone.name: f"backbones[{index}]" for index, backbone in enumerate(plan.spec.backbones)}
    declared = {backbone.name: backbone for backbone in plan.spec.backbones}
    for cell in cells:
        if executor in ("local", "torchrun"):
            torchrun = executor == "torchrun"
            mismatch = process_mismatch(cell, "pytorch" if torchrun else "none",
                                        processes_for(cell, torchrun, nproc_per_node))
            if mismatch is not None:
                where = "--executor slurm runs cells on several nodes" if cell.resources.nodes > 1 else \
                    "--executor torchrun --nproc-per-node N starts N processes"
                problems.append((_resources_key(plan, cell), f"{mismatch} ({where})"))
        backbone = declared.get(cell.backbone)
        if backbone is None or backbone.generated or backbone.pretrain is not None or cell.depends_on:
            continue
        if cell.checkpoint not in checked:
            checked[cell.checkpoint] = checkpoint_problem(Path(cell.checkpoint), backbone.format)
        if checked[cell.checkpoint] is not None:
            problems.append((f"{keys[cell.backbone]}.checkpoint", f"cell {cell.label}: {checked[cell.checkpoint]}"))
    if problems:
        key, message = problems[0]
        others = len(problems) - 1
        raise PreflightError(plan.spec.path, key, f"{message}; no cell was started and no attempt spent"
                             + (f" ({others} more cell(s) refused; mae-transfer doctor lists them)" if others else ""))
