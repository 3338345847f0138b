"""`mae-transfer` command line: parses arguments and delegates to the package's command modules.

Each command group lives beside the code it drives and exposes ``register(subparsers)``:
checkpoints (inspect, convert), data (make, check), matrix (doctor, plan, run, status),
leaderboard and pretrain (visualize). A registered sub-parser sets ``func``, which receives the
parsed arguments and returns the exit code.
"""

from __future__ import annotations

import argparse
import logging
import sys


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every command group registered."""
    from mae_transfer.checkpoints import cli as checkpoint_commands
    from mae_transfer.data import cli as data_commands
    from mae_transfer.leaderboard import cli as leaderboard_commands
    from mae_transfer.matrix import cli as matrix_commands
    from mae_transfer.pretrain import cli as pretrain_commands

    parser = argparse.ArgumentParser(
        prog="mae-transfer",
        description="Transfer benchmarks for MAE-pretrained Vision Transformers.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (checkpoint_commands, data_commands, matrix_commands, leaderboard_commands, pretrain_commands):
        group.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mae-transfer`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
