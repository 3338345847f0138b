"""`mae-transfer doctor|plan|run|status MATRIX`: the benchmark matrix commands."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from pathlib import Path

from mae_transfer.matrix.spec.matrix_spec import SpecError, load_spec

logger = logging.getLogger(__name__)

EXECUTOR_CHOICES = ("local", "torchrun", "slurm")


def add_matrix_command(subparsers: argparse._SubParsersAction, name: str, help_text: str, func,
                       json_flag: bool = True, errors: tuple[type[Exception], ...] = ()) -> argparse.ArgumentParser:
    """A sub-command over a matrix file (``MATRIX``, ``--work-root``, ``--only``).

    The errors a user can fix (spec, result, busy cell, OS errors, and ``errors``) print one line.
    """
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    parser.add_argument("matrix", help="matrix YAML file (benchmarks/*.yaml)")
    parser.add_argument("--work-root", help="override the matrix's work_root")
    parser.add_argument("--only", help="comma-separated globs over cell labels or ids")
    if json_flag:
        parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=lambda args: _guard(func, args, errors))
    return parser


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the matrix commands (the leaderboard registers its own: `mae_transfer.leaderboard.cli`)."""

    def command(name: str, help_text: str, func, json_flag: bool = True) -> argparse.ArgumentParser:
        return add_matrix_command(subparsers, name, help_text, func, json_flag)

    doctor = command("doctor", "check packages, configs, checkpoints, datasets, GPUs and disk before running", _doctor)
    doctor.add_argument("--executor", choices=EXECUTOR_CHOICES, default="local",
                        help="slurm: also check the cluster (partitions, nodes, GPUs and CPUs per node, time limits)")
    plan = command("plan", "list the cells, their configs, batch (per GPU x accumulation), lr, work dirs and "
                           "estimated GPU-hours; exits 1 when a cell is refused", _plan)
    plan.add_argument("--executor", choices=EXECUTOR_CHOICES, default="local",
                      help="slurm: also refuse cells the cluster cannot hold (sinfo)")
    plan.add_argument("--resolve", action="store_true", help="also write each cell's CELL_DIR/config.py, the resolved config it trains from (needs mmengine)")
    run = command("run", "run every unfinished cell (idempotent; resumes interrupted cells)", _run)
    run.add_argument("--executor", choices=EXECUTOR_CHOICES, default="local")
    run.add_argument("--max-parallel", type=int, help="cells at a time (default: the matrix's max_parallel)")
    run.add_argument("--nproc-per-node", type=int, help="torchrun processes per cell (default: the cell's GPUs)")
    run.add_argument("--retry-failed", action="store_true", help="retry failed cells beyond max_attempts")
    run.add_argument("--cluster", choices=("slurm", "local"), help="submitit cluster (local: run jobs here)")
    run.add_argument("--wait", action="store_true", help="slurm: block until the submitted jobs finish")
    run.add_argument("--sbatch-only", action="store_true", help="slurm: write sbatch array scripts, submit nothing")
    run.add_argument("--no-progress", action="store_true",
                     help="no live progress table on stderr and no per-cell summary lines")
    from mae_transfer.matrix.rehearse import cli as rehearse_cli

    rehearse_cli.add_arguments(run)
    status = command("status", "a table of cells with state, progress and ETA", _status)
    status.add_argument("--watch", type=float, metavar="SECONDS", help="refresh every SECONDS until all cells end")


def _guard(func, args: argparse.Namespace, errors: tuple[type[Exception], ...] = ()) -> int:
    """Run a command; the errors a user can fix are one line naming the file, never a traceback."""
    from mae_transfer.matrix.run.result import ResultError
    from mae_transfer.matrix.run.state import CellBusy

    try:
        return func(args)
    except (SpecError, ResultError, *errors) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except CellBusy as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    except OSError as error:
        # a read-only or full work root, a missing file: say which path and why
        where = f"{error.filename}: " if getattr(error, "filename", None) else ""
        print(f"error: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: running cells were stopped and stay resumable (their attempts are not counted); "
              "run the same command again to resume", file=sys.stderr)
        return 130


def plan_of(args: argparse.Namespace):
    """The plan of ``args.matrix`` (with ``--work-root`` and ``--only``)."""
    from mae_transfer.matrix.plan.planner import plan_matrix

    return plan_matrix(load_spec(args.matrix, work_root=args.work_root), only=args.only)


def _doctor(args: argparse.Namespace) -> int:
    from mae_transfer.matrix.doctor import run_doctor

    report = run_doctor(plan_of(args), executor=args.executor)
    print(report.to_json() if args.json else report.render())
    return 0 if report.ok else 1


def plan_table(plan) -> tuple[str, list, list[list[str]], list | None, str]:
    """The title, columns, one row per cell, styles and caption of ``plan``'s table (configs under configs/)."""
    from mae_transfer.tables import Column
    from mae_transfer.paths import config_name

    columns = [Column("cell", fold=True), Column("id"), Column("config (configs/)", fold=True), Column("GPUs"),
               Column("batch"), Column("lr", justify="right"), Column("GPU-h", justify="right")]
    rows = []
    for cell in plan.cells:
        config = config_name(cell.config).removeprefix("configs/")
        batch = (f"{cell.effective_batch}={cell.per_gpu_batch}x{cell.accumulation}x{cell.processes}"
                 + ("†" if cell.off_recipe else "")) if cell.effective_batch is not None else "-"
        rows.append([cell.label, cell.id[:10], config, f"{cell.resources.nodes}x{cell.resources.gpus_per_cell}", batch,
                     f"{cell.lr:g}" if cell.lr is not None else "-", f"{cell.gpu_hours:,.1f}"])
    title = (f"{plan.spec.name}: {len(plan.cells)} cells, ~{plan.total_gpu_hours:,.0f} GPU-hours"
             + (f", {len(plan.refused)} refused" if plan.refused else ""))
    caption = "GPUs: nodes x GPUs per node; batch: effective = per GPU x accumulation x processes (†: off-recipe)"
    return title, columns, rows, None, caption


def _plan(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from rich.console import Console
    from rich.markup import escape

    plan = plan_of(args)
    if args.resolve:
        from mae_transfer.matrix.plan.resolve import write_resolved_configs

        write_resolved_configs(plan)
    cluster_refused = _slurm_refusals(plan) if args.executor == "slurm" else []
    if args.json:
        print(json.dumps({"matrix": plan.spec.name, "work_root": str(plan.spec.work_root), "cells": [c.to_json() for c in plan.cells],
                          "refused": [asdict(r) for r in plan.refused], "total_gpu_hours": plan.total_gpu_hours,
                          "warnings": plan.warnings, "cluster_refused": cluster_refused}, indent=2, default=str))
        return 1 if plan.refused or cluster_refused else 0
    from mae_transfer.tables import print_table

    console = Console()
    print_table(console, *plan_table(plan))
    console.print(f"work root: {plan.spec.work_root} (each cell in cells/LABEL-ID)", markup=False, highlight=False,
                  soft_wrap=True)
    for cell in plan.cells:
        if cell.off_recipe:
            console.print(f"† off-recipe: {cell.label}: {cell.off_recipe_reason}", markup=False, highlight=False)
    for refusal in [*(r.message for r in plan.refused), *cluster_refused]:
        console.print(f"[red]refused:[/red] {escape(refusal)}", markup=True, highlight=False)
    for warning in plan.warnings:
        if not any(refusal.message in warning for refusal in plan.refused):
            console.print(f"[yellow]warning:[/yellow] {warning}", markup=True, highlight=False)
    return 1 if plan.refused or cluster_refused else 0


def _slurm_refusals(plan, cluster: str | None = None, required: bool = False) -> list[str]:
    """What the SLURM cluster (or SLURM's syntax) refuses of ``plan``'s cells: one message each, naming the key."""
    from mae_transfer.matrix.run.executors.slurm_cluster import refusals

    return refusals(plan, cluster, required)


def _run(args: argparse.Namespace) -> int:
    from mae_transfer.matrix.run.executors import MatrixBusy, execute
    from mae_transfer.matrix.run.executors.sbatch import SlurmSpecError, SubmissionError
    from mae_transfer.matrix.progress_view import show_progress, watched_cells

    plan = plan_of(args)
    for warning in plan.warnings:
        logger.warning("%s", warning)
    if args.rehearse:
        from mae_transfer.matrix.rehearse.cli import run_rehearsal

        return run_rehearsal(args, plan)
    if args.executor == "slurm":  # refused before anything is written or submitted
        refused = _slurm_refusals(plan, args.cluster, required=args.cluster == "slurm" and not args.sbatch_only)
        for message in refused:
            print(f"error: {message}", file=sys.stderr)
        if refused:
            return 2
    options = {"cluster": args.cluster, "wait": args.wait, "sbatch_only": args.sbatch_only}
    # SIGTERM (a killed or preempted `run`) takes the Ctrl-C path: cells stopped and left resumable.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    # live progress while cells train here (or, with --wait, on SLURM); submitting alone shows none
    watch = not args.no_progress and (args.executor != "slurm" or (args.wait and not args.sbatch_only))
    try:
        with show_progress(watched_cells(plan.cells) if watch else [], title=plan.spec.name):
            summary = execute(plan, executor=args.executor, max_parallel=args.max_parallel,
                              retry_failed=args.retry_failed, nproc_per_node=args.nproc_per_node,
                              slurm_options=options if args.executor == "slurm" else None)
    except MatrixBusy as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    except (SlurmSpecError, SubmissionError) as error:  # what SLURM cannot take, or sbatch refused
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary.__dict__, indent=2))
    elif summary.nothing_to_do:
        print(f"nothing to do: {len(summary.already_done)} of {len(plan.cells)} cells already finished"
              + (f", {len(summary.exhausted)} failed {plan.spec.max_attempts} times (use --retry-failed)" if summary.exhausted else "")
              + (f", {len(summary.running_elsewhere)} running in another process" if summary.running_elsewhere else "")
              + (f", {len(summary.queued)} queued as SLURM jobs" if summary.queued else "")
              + (f", {len(summary.blocked)} blocked by a failed pre-training" if summary.blocked else ""))
    else:
        print(f"ran {len(summary.succeeded) + len(summary.failed)} cell(s): {len(summary.succeeded)} done, "
              f"{len(summary.failed)} failed; {len(summary.already_done)} were already finished"
              + (f"; {len(summary.submitted)} submitted" if summary.submitted else "")
              + (f"; {len(summary.interrupted)} interrupted (resumable)" if summary.interrupted else "")
              + (f"; {len(summary.running_elsewhere)} running in another process" if summary.running_elsewhere else "")
              + (f"; {len(summary.queued)} queued as SLURM jobs" if summary.queued else "")
              + (f"; {len(summary.blocked)} blocked by a failed pre-training" if summary.blocked else ""))
        for label in summary.failed:
            print(f"  failed: {label} (mae-transfer status {args.matrix} shows the error)")
        for label in summary.blocked:
            print(f"  blocked: {label} (waits on its pre-training cell, which failed)")
    return 1 if summary.failed else 0


def _raise_interrupt(signum, frame) -> None:
    from mae_transfer.matrix.run.cell import _on_signal

    _on_signal(signum, frame)  # recorded as SIGTERM in the cells' state
    raise KeyboardInterrupt


def _status_rows(plan) -> list[dict]:
    from mae_transfer.matrix.progress_view import read_progress
    from mae_transfer.matrix.run.slurm_jobs import slurm_job_state
    from mae_transfer.matrix.run.state import status

    rows = []
    for cell in plan.cells:
        cell_dir = Path(cell.work_dir)
        current = status(cell_dir, cell.id, job_state=slurm_job_state)
        state, shown = current.recorded, current.state
        error_tail = state.error_tail
        if shown != state.state or state.problems:  # what the state module concluded beyond the file
            error_tail = "\n".join(filter(None, [state.error_tail if shown == state.state else "", current.reason]))
        progress = read_progress(cell_dir) if shown in ("running", "interrupted", "failed") else None
        rows.append({"cell": cell.label, "id": cell.id, "work_dir": cell.work_dir, "state": shown, "attempts": state.attempts,
                     "progress": progress.text if progress else "", "eta": (progress.eta or "") if progress else "",
                     "error_tail": error_tail if shown in ("failed", "interrupted", "blocked") else "",
                     "heartbeat": state.heartbeat, "host": state.host, "job_id": state.job_id})
    return rows


_STATE_COLOURS = {"done": "green", "failed": "red", "running": "cyan", "interrupted": "yellow", "submitted": "blue",
                  "blocked": "magenta", "pending": "white"}


def _status_title(plan, rows) -> str:
    counts = {s: sum(r["state"] == s for r in rows) for s in _STATE_COLOURS}
    return f"{plan.spec.name}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)


def _status_cells(rows) -> tuple[list, list[list[str]], list[str]]:
    from mae_transfer.tables import Column

    columns = [Column("cell", fold=True), Column("id"), Column("state"), Column("attempts", justify="right"),
               Column("progress"), Column("ETA"), Column("last error", fold=True)]
    cells = [[row["cell"], row["id"][:10], row["state"], str(row["attempts"]), row["progress"], row["eta"],
              row["error_tail"].strip().splitlines()[-1] if row["error_tail"].strip() else ""] for row in rows]
    return columns, cells, [_STATE_COLOURS.get(row["state"], "white") for row in rows]


def _status_table(plan, rows):
    """The live (``--watch``) table."""
    from rich.table import Table

    columns, cells, styles = _status_cells(rows)
    table = Table(title=_status_title(plan, rows), title_justify="left")
    for column in columns:
        table.add_column(column.header, overflow="fold" if column.fold else "ellipsis", no_wrap=not column.fold)
    for values, style in zip(cells, styles):
        table.add_row(*values, style=style)
    return table


def _may_change(plan, rows) -> bool:
    """Whether a watched matrix can still change by itself: a cell trains or waits in SLURM's queue, or a
    ``run`` of it is in progress (its pending cells start). Interrupted and failed cells wait for a user."""
    from mae_transfer.matrix.run.executors import run_in_progress

    return any(r["state"] in ("running", "submitted") for r in rows) or run_in_progress(plan.spec.work_root)


def _status(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.live import Live

    plan = plan_of(args)
    rows = _status_rows(plan)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 1 if any(r["state"] == "failed" for r in rows) else 0
    console = Console()
    if args.watch:
        with Live(_status_table(plan, rows), console=console, refresh_per_second=1) as live:
            while _may_change(plan, rows):
                time.sleep(args.watch)
                rows = _status_rows(plan)
                live.update(_status_table(plan, rows))
    else:
        from mae_transfer.tables import print_table

        columns, cells, styles = _status_cells(rows)
        print_table(console, _status_title(plan, rows), columns, cells, styles)
    for row in rows:
        if row["state"] == "failed":
            console.print(f"\n[red]{row['cell']}[/red] ({row['id']}) failed after {row['attempts']} attempt(s); error tail:",
                          markup=True, highlight=False)
            console.print(row["error_tail"], markup=False, highlight=False)
        elif row["state"] == "blocked":
            from rich.markup import escape

            console.print(f"\n[magenta]{escape(row['cell'])}[/magenta] ({row['id']}) blocked: {escape(row['error_tail'])}",
                          markup=True, highlight=False)
    return 1 if any(r["state"] == "failed" for r in rows) else 0
