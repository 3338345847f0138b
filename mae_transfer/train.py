"""Train any mae-transfer config on mmengine's Runner, then save the final metrics.

    python -m mae_transfer.train CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                          [--cfg-options KEY=VALUE ...] [--launcher none|pytorch|slurm]

``python tools/train.py`` in a checkout is the same command (a thin wrapper, as in mmdet).

After training, ``WORK_DIR/metrics.json`` holds the final validation metrics in percent (the
last validation of the run, or a fresh one when the schedule did not end on one).

The same command runs on a machine without a GPU, under ``torchrun`` too: the config is adapted
by ``mae_transfer.integrations.cpu_fallbacks.apply_cpu_fallbacks`` (AMP -> float32, SyncBN ->
BN, gloo and a CPU DDP wrapper), each change is logged as a warning, and the list is written to
``WORK_DIR/deviations.json`` (``[]`` when nothing changed) before training starts.

``--rehearsal`` (used by ``mae-transfer run --rehearse``) adds the hook that writes
``WORK_DIR/rehearsal_rank{RANK}.json`` (step times, peak memory, parameters, losses;
``mae_transfer.integrations.rehearsal``).
"""

from __future__ import annotations

import argparse
import gc
import os
import socket
import sys
from pathlib import Path

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mae_transfer.integrations.engine as engine
from mae_transfer.integrations.cpu_fallbacks import (
    Deviation,
    apply_cpu_fallbacks,
    end_process_group,
    start_cpu_process_group,
    write_deviations,
)
from mae_transfer.integrations.metrics_file import write_metrics_file
from mae_transfer.integrations.slurm_rendezvous import export_slurm_rendezvous


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
    parser.add_argument("--rehearsal", action="store_true",
                        help="record step times, peak memory and parameters (mae-transfer run --rehearse)")
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
    if getattr(args, "rehearsal", False):
        import mae_transfer.integrations.rehearsal  # noqa: F401  (registers MAETransferRehearsalHook)

        cfg.custom_hooks.append(dict(type="MAETransferRehearsalHook"))
    return cfg


def build_runner(cfg: Config, deviations_name: str = "deviations.json") -> tuple[Runner, list[Deviation]]:
    """Adapt the config to the machine (see ``apply_cpu_fallbacks``) and build its Runner.

    The deviations are logged as warnings and written to ``WORK_DIR/<deviations_name>`` (rank 0).
    """
    deviations = apply_cpu_fallbacks(cfg)
    if cfg.launcher == "slurm":  # ranks and the rendezvous from srun's variables, on GPUs and CPUs alike
        found = export_slurm_rendezvous()
        # every rank says where it runs (mmengine's logger speaks for rank 0 only): a hung
        # rendezvous is then visible in the job's log
        sys.stderr.write(f"[mae-transfer] rank {found['RANK']} of {found['WORLD_SIZE']} on {socket.gethostname()}: "
                         f"rendezvous at {found['MASTER_ADDR']}:{found['MASTER_PORT']}\n")
    start_cpu_process_group(cfg.launcher)  # gloo, without a GPU only
    runner = RUNNERS.build(cfg) if "runner_type" in cfg else Runner.from_cfg(cfg)
    for deviation in deviations:
        runner.logger.warning(f"deviation from the config: {deviation.describe()}")
    if runner.rank == 0:
        write_deviations(Path(cfg.work_dir) / deviations_name, deviations)
    return runner, deviations


def freeze_what_lives_for_the_run() -> None:
    """Move every object alive now out of the cyclic garbage collector's reach (``gc.freeze``).

    The modules, classes and functions of torch, mmengine, mmdet/mmseg and timm (then the built
    runner) live until the process ends, yet each full collection walks them all: mmengine calls
    ``gc.collect()`` after serializing each dataset, and allocations trigger more. Frozen, a smoke
    cell's process spends 11-28% less CPU. Freed memory is unaffected (reference counting frees it).
    """
    gc.freeze()


def main(argv: list[str] | None = None) -> int:
    freeze_what_lives_for_the_run()
    args = parse_args(argv)
    cfg = load_config(args)
    runner, _ = build_runner(cfg)
    freeze_what_lives_for_the_run()
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
    end_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
