"""Evaluate a trained checkpoint of any mae-transfer config on its test split.

    python -m mae_transfer.test CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options KEY=VALUE ...]
                         [--launcher none|pytorch|slurm] [--out-name test_metrics.json]

The metrics land in ``WORK_DIR/test_metrics.json`` in percent. Without a GPU the config is
adapted as in ``mae_transfer.train``; the changes land in ``WORK_DIR/test_deviations.json``.
``python tools/test.py`` in a checkout is the same command.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mmengine.config import Config, DictAction

import mae_transfer.integrations.engine  # noqa: F401  (safe checkpoint loading)
from mae_transfer.integrations.cpu_fallbacks import end_process_group
from mae_transfer.integrations.metrics_file import write_metrics_file
from mae_transfer.train import build_runner, freeze_what_lives_for_the_run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config")
    parser.add_argument("checkpoint")
    parser.add_argument("--work-dir")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config keys: key=value")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    parser.add_argument("--out-name", default="test_metrics.json", help="metrics file name inside the work dir")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    cfg.work_dir = args.work_dir or cfg.get("work_dir") or str(Path("work_dirs") / Path(args.config).stem)
    cfg.load_from = args.checkpoint
    cfg.resume = False
    runner, _ = build_runner(cfg, "test_deviations.json")  # CPU adaptations as in training
    freeze_what_lives_for_the_run()
    metrics = runner.test()
    if runner.rank == 0:
        path = write_metrics_file(
            Path(cfg.work_dir) / args.out_name,
            metrics,
            iteration=runner.iter,
            epoch=runner.epoch,
            checkpoint=str(args.checkpoint),
            config=str(args.config),
        )
        runner.logger.info(f"test metrics written to {path}")
    end_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
