"""`mae-transfer leaderboard MATRIX`: render the paper's tables for a matrix's results."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mae_transfer.leaderboard.references import ReferenceError as ReferencesError
from mae_transfer.matrix.cli import add_matrix_command, plan_of


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``leaderboard`` command."""
    board = add_matrix_command(subparsers, "leaderboard", "render the paper's tables for the matrix's results",
                               _leaderboard, json_flag=False, errors=(ReferencesError,))
    board.add_argument("--format", choices=("md", "csv", "html", "png"), default="md")
    board.add_argument("--output", "-o", help="output file (default: stdout for md/csv, WORK_ROOT/leaderboard.EXT)")
    board.add_argument("--all-results", action="store_true",
                       help="tabulate every result.json under the work root, planned or not (a result of a cell "
                            "the current matrix no longer plans, e.g. after a config edit, is its own row, "
                            "marked 'not planned')")


def _leaderboard(args: argparse.Namespace) -> int:
    from mae_transfer.leaderboard import build_leaderboard

    if args.all_results and args.only:
        print("error: --all-results tabulates the whole work root; it cannot be combined with --only", file=sys.stderr)
        return 2
    plan = plan_of(args)
    board = build_leaderboard(plan, all_results=args.all_results)
    rendered = board.render(args.format)
    output = Path(args.output) if args.output else None
    if output is None and args.format in ("html", "png"):
        output = plan.spec.work_root / f"leaderboard.{args.format}"
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
