"""`mae-transfer data make KIND OUT` and `mae-transfer data check KIND ROOT`."""

from __future__ import annotations

import argparse
import inspect
import sys

from mae_transfer.data import DATASET_MODULES, check_dataset, dataset_module, make_dataset


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command group."""
    data = subparsers.add_parser("data", help="make synthetic datasets or check real ones")
    actions = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    make = actions.add_parser("make", help="write a tiny synthetic dataset in the official layout")
    make.add_argument("kind", choices=sorted(DATASET_MODULES))
    make.add_argument("out", help="output directory (the dataset root)")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--num-classes", type=int, default=None,
                      help="classes to generate (classification kinds; imagenet: up to 1000, the full label space)")
    make.set_defaults(func=_make)

    check = actions.add_parser("check", help="validate a dataset root in the official layout")
    check.add_argument("kind", choices=sorted(DATASET_MODULES))
    check.add_argument("root")
    check.add_argument("--num-classes", type=int, default=None,
                       help="imagenet: expected class folders (default 1000, the real set; 0: any count)")
    check.add_argument("--json", action="store_true", help="machine-readable report")
    check.add_argument("--quick", action="store_true",
                       help="read image headers only instead of decoding every image (misses truncated files)")
    check.set_defaults(func=_check)


def _accepts(function, option: str) -> bool:
    return option in inspect.signature(function).parameters


def _make(args: argparse.Namespace) -> int:
    options = {}
    if args.num_classes is not None:
        if not _accepts(dataset_module(args.kind).make, "num_classes"):
            print(f"error: --num-classes does not apply to {args.kind}", file=sys.stderr)
            return 2
        options["num_classes"] = args.num_classes
    root = make_dataset(args.kind, args.out, seed=args.seed, **options)
    print(f"wrote {args.kind} dataset to {root}")
    return 0


def _check(args: argparse.Namespace) -> int:
    options = {}
    if args.num_classes is not None:
        if not _accepts(dataset_module(args.kind).check, "num_classes"):
            print(f"error: --num-classes does not apply to {args.kind}", file=sys.stderr)
            return 2
        options["num_classes"] = args.num_classes or None
    report = check_dataset(args.kind, args.root, quick=args.quick, **options)
    print(report.to_json() if args.json else report.render())
    return 0 if report.ok else 1
