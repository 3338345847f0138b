"""`mae-transfer leaderboard MATRIX`: render the paper's tables for a matrix's results."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mae_transfer.leaderboard.baseline import BaselineError
from mae_transfer.leaderboard.references import ReferenceError as ReferencesError
from mae_transfer.leaderboard.sweep import SweepError
from mae_transfer.matrix.cli import add_matrix_command, plan_of


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``leaderboard`` command."""
    board = add_matrix_command(subparsers, "leaderboard", "render the paper's tables for the matrix's results",
                               _leaderboard, json_flag=False,
                               errors=(ReferencesError, BaselineError, SweepError))
    board.add_argument("--format", choices=("md", "csv", "html", "png"), default="md")
    board.add_argument("--output", "-o", help="output file (default: stdout for md/csv, WORK_ROOT/leaderboard.EXT)")
    board.add_argument("--all-results", action="store_true",
                       help="tabulate every result.json under the work root, planned or not (a result of a cell "
                            "the current matrix no longer plans, e.g. after a config edit, is its own row, "
                            "marked 'not planned')")
    board.add_argument("--baseline", metavar="BACKBONE",
                       help="under each table, every other backbone minus this one (per task metric, means over "
                            "seeds), e.g. the random initialisation beside a pre-trained MAE")
    board.add_argument("--along", metavar="PARAM",
                       help="lay transfer results out along a swept pre-training parameter (mask_ratio, epochs, "
                            "decoder_depth, ...): a table per stage and setting of the other parameters, a row per "
                            "value (the paper's Fig. 5 along mask_ratio; along epochs, Fig. 7 from a stage's "
                            "sweep: {epochs: [...]}, each a full schedule; an evaluate_epochs checkpoint reads "
                            "'snapshot at epoch E of an N-epoch schedule'); --format png draws the curves")
    board.add_argument("--plot", metavar="PNG", help="also write the chart (the sweep curves with --along) to PNG")


def _leaderboard(args: argparse.Namespace) -> int:
    from mae_transfer.leaderboard import build_leaderboard

    if args.all_results and args.only:
        print("error: --all-results tabulates the whole work root; it cannot be combined with --only", file=sys.stderr)
        return 2
    if args.along and args.baseline:
        print("error: --baseline adds difference rows to the paper tables; --along shows sweep tables instead; "
              "give one of them", file=sys.stderr)
        return 2
    plan = plan_of(args)
    board = build_leaderboard(plan, all_results=args.all_results, baseline=args.baseline, along=args.along)
    if args.plot:
        _write_plot(board, Path(args.plot))
    rendered = board.render(args.format)
    output = Path(args.output) if args.output else None
    if output is None and args.format in ("html", "png"):
        stem = f"leaderboard-{args.along}" if args.along else "leaderboard"
        output = plan.spec.work_root / f"{stem}.{args.format}"
    if output is None:
        sys.stdout.write(rendered)
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(rendered, bytes):
        output.write_bytes(rendered)
    else:
        output.write_text(rendered)
    print(f"wrote {output}")
    for problem in board.problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 0


def _write_plot(board, path: Path) -> None:
    """Write the board's chart to ``path`` (a note on stderr when no entry has a value yet)."""
    png = board.plot()
    if not png:
        print(f"no values to plot yet; {path} not written", file=sys.stderr)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    print(f"wrote {path}", file=sys.stderr)
