"""`mae-transfer` command line: parses arguments and delegates to the package's command modules.

Each command group lives beside the code it drives and exposes ``register(subparsers)``:
checkpoints (inspect, convert), data (make, check), matrix (doctor, plan, run, status),
leaderboard and pretrain (visualize). A registered sub-parser sets ``func``, which receives the
parsed arguments and returns the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys


# Command groups by import cost: the light ones load no torch, so `plan`, `status`, `leaderboard` and
# `data` start in about a second; `inspect`, `convert` and `visualize` need torch (and timm) at import.
LIGHT_GROUPS = ("data", "matrix", "leaderboard")
TORCH_GROUPS = ("checkpoints", "pretrain")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; every command group is registered unless ``command`` is one of a light group."""
    parser = argparse.ArgumentParser(
        prog="mae-transfer",
        description="Transfer benchmarks for MAE-pretrained Vision Transformers.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in LIGHT_GROUPS:
        importlib.import_module(f"mae_transfer.{group}.cli").register(subparsers)
    if command not in subparsers.choices:  # help, a torch command or a typo: the full parser
        for group in TORCH_GROUPS:
            importlib.import_module(f"mae_transfer.{group}.cli").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mae-transfer`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
