"""The ``run --rehearse`` options and output: a table per cell (or ``--json``), failed cells' tails."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mae_transfer.matrix.plan.planner import Plan
    from mae_transfer.matrix.rehearse.rehearsal import RehearsalRow

DATA_MODES = ("auto", "generated", "real")


def _depth(value: str) -> int | str:
    if value == "min":
        return value
    depth = int(value)
    if depth < 1:
        raise argparse.ArgumentTypeError(f"--max-depth must be >= 1 or 'min', got {value}")
    return depth


def _batch(value: str) -> int:
    batch = int(value)
    if batch < 1:
        raise argparse.ArgumentTypeError(f"--rehearse-batch must be >= 1, got {value}")
    return batch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The rehearsal options of ``run``."""
    group = parser.add_argument_group("rehearsal (--rehearse)")
    group.add_argument("--rehearse", action="store_true",
                       help="run every cell for a few steps and a few evaluation images at its real shapes on this "
                            "machine, in WORK_ROOT/rehearsal (no cell work dir is touched), and print a table per cell")
    group.add_argument("--steps", type=int, default=2, help="training steps per rehearsed cell (default 2; the first "
                                                            "is excluded from s/step as warm-up)")
    group.add_argument("--eval-images", type=int, default=2, help="evaluation images per rehearsed cell (default 2)")
    group.add_argument("--rehearse-nproc", metavar="N|GLOB=N,...",
                       help="processes for cells planned on more than one (default 2, DDP); GLOB=N entries set it "
                            "per cell label, e.g. 'coco-maskrcnn.paper*=1,2'")
    group.add_argument("--generate-missing", action="store_true",
                       help="replace a checkpoint that does not exist by a generated one of the declared arch")
    group.add_argument("--max-depth", type=_depth, metavar="K|min",
                       help="cut backbones to K blocks where every shape is kept (one window and one global block, "
                            "four taps, a frozen block under partial fine-tuning; checkpoints are then generated at "
                            "the cut depth); 'min': each cell's smallest such depth")
    group.add_argument("--rehearse-data", choices=DATA_MODES, default="auto",
                       help="auto: the declared dataset root when it exists, else generated data in the real label "
                            "space (default); generated; real")
    group.add_argument("--rehearse-batch", type=_batch, metavar="N",
                       help="train at most N images per process (default: the plan's per-GPU batch); every other "
                            "shape is kept, the table says so and projects no GPU-hours from such a step")
    group.add_argument("--rehearse-timeout", type=float, default=3600.0, help="seconds per cell (default 3600)")


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _params(row: "RehearsalRow") -> str:
    if row.params is None:
        return "-"
    text = f"{row.params / 1e6:,.1f}M"
    return text if row.trainable_params == row.params else f"{text} ({row.trainable_params / 1e6:,.1f}M trainable)"


def render(plan: "Plan", rows: "list[RehearsalRow]") -> None:
    """Print the table, then the error tail of every failed cell."""
    from rich.console import Console

    from mae_transfer.tables import Column, print_table

    failed = [row for row in rows if row.status != "ok"]
    columns = [Column("cell", fold=True), Column("status"), Column("s/step", justify="right"),
               Column("peak MiB/proc"), Column("params", fold=True), Column("batch = per GPU x acc x procs"),
               Column("lr", justify="right"), Column("procs plan -> here"), Column("GPU-h plan", justify="right"),
               Column("h measured", justify="right"), Column("notes")]
    cells = []
    for number, row in enumerate(rows, 1):
        batch = "-" if row.effective_batch is None else (
            f"{row.effective_batch} = {row.per_gpu_batch} x {row.accumulation} x {row.processes}")
        cells.append([
            row.cell, row.status, _number(row.seconds_per_step, 2),
            ", ".join(f"{m:,.0f}" for m in row.peak_memory_mib) or "-", _params(row), batch,
            "-" if row.lr is None else f"{row.lr:g}",
            "-" if row.processes is None else f"{row.processes} -> {row.processes_rehearsed}",
            _number(row.gpu_hours), _number(row.projected_hours), f"[{number}]"])
    console = Console()
    print_table(console, f"{plan.spec.name} rehearsal: {len(rows) - len(failed)} ok, {len(failed)} failed", columns,
                cells, ["green" if row.status == "ok" else "red" for row in rows])
    console.print("Every rehearsal: gradient accumulation 1, dataloader workers 0, checkpoint saving off; the batch "
                  "and lr shown are the plan's.", markup=False, highlight=False)
    for number, row in enumerate(rows, 1):
        console.print(f"[{number}] {row.cell}: {'; '.join(row.notes)}", markup=False, highlight=False)
    if any(row.projected_hours is not None for row in rows):
        console.print("h measured: this machine's measured s/step x the planned run's iterations x its processes "
                      "(device-hours; on a CPU a CPU-time projection, with a depth cut not the full model).",
                      markup=False, highlight=False)
    for row in failed:
        console.print(f"\n[red]failed:[/red] {row.cell}", markup=True, highlight=False)
        console.print(row.error, markup=False, highlight=False)


def run_rehearsal(args: argparse.Namespace, plan: "Plan") -> int:
    """``run --rehearse``: rehearse, print (table or ``--json``); 1 when a cell failed."""
    from mae_transfer.matrix.rehearse.rehearsal import RehearsalOptions, rehearse_plan

    options = RehearsalOptions(steps=args.steps, eval_images=args.eval_images, nproc=args.rehearse_nproc,
                               generate_missing=args.generate_missing, max_depth=args.max_depth,
                               data=args.rehearse_data, timeout=args.rehearse_timeout,
                               max_batch=args.rehearse_batch)
    rows = rehearse_plan(plan, options)
    if args.json:
        print(json.dumps([row.to_json() for row in rows], indent=2, default=str))
    else:
        render(plan, rows)
    return 1 if any(row.status != "ok" for row in rows) else 0
