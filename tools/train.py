#!/usr/bin/env python
"""Train any mae-transfer config on mmengine's Runner, then save the final metrics.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                          [--cfg-options KEY=VALUE ...] [--launcher none|pytorch|slurm]

After training, ``WORK_DIR/metrics.json`` holds the final validation metrics in percent (the
last validation of the run, or a fresh one when the schedule did not end on one).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import torch

import mae_transfer.integrations.engine as engine
from mae_transfer.integrations.metrics_file import write_metrics_file


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", help="config file")
    parser.add_argument("--work-dir", help="where logs, checkpoints and metrics.json go")
    parser.add_argument(
        "--resume", nargs="?", const="auto", help="resume from CKPT, or from the latest checkpoint in the work dir"
    )
    parser.add_argument("--amp", action="store_true", help="mixed precision (AmpOptimWrapper)")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config keys: key=value")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    return args


def load_config(args: argparse.Namespace) -> Config:
    """The config with the command line applied."""
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    cfg.work_dir = args.work_dir or cfg.get("work_dir") or str(Path("work_dirs") / Path(args.config).stem)
    if args.amp:
        cfg.optim_wrapper.type = "AmpOptimWrapper"
        cfg.optim_wrapper.setdefault("loss_scale", "dynamic")
    if args.resume == "auto":
        cfg.resume, cfg.load_from = True, None
    elif args.resume:
        cfg.resume, cfg.load_from = True, args.resume
    cfg.custom_hooks = [*cfg.get("custom_hooks", []), dict(type="MAETransferFinalMetricsHook"), *engine.safety_hooks()]
    return cfg


def init_cpu_process_group(launcher: str) -> None:
    """Start a gloo process group for CPU-only distributed runs.

    mmengine's pytorch launcher always calls ``torch.cuda.set_device``; it skips its own set-up
    when a process group already exists, so CPU runs (tests, laptops) start one here.
    """
    if launcher == "pytorch" and not torch.cuda.is_available() and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="gloo")


def build_runner(cfg: Config) -> Runner:
    init_cpu_process_group(cfg.launcher)
    return RUNNERS.build(cfg) if "runner_type" in cfg else Runner.from_cfg(cfg)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = load_config(args)
    runner = build_runner(cfg)
    runner.train()
    recorder = next(hook for hook in runner.hooks if isinstance(hook, engine.MAETransferFinalMetricsHook))
    metrics = recorder.latest if recorder.latest_iter == runner.iter else None
    if metrics is None and runner.val_loop is not None:
        metrics = runner.val()
    if metrics is not None and runner.rank == 0:
        path = write_metrics_file(
            Path(cfg.work_dir) / "metrics.json",
            metrics,
            iteration=runner.iter,
            epoch=runner.epoch,
            checkpoint="last",
            config=str(args.config),
        )
        runner.logger.info(f"final metrics written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
