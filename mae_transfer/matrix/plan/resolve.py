"""Resolved configs: each cell's config with its overrides merged in, dumped as ``CELL_DIR/config.py``.

The cell trains from this one file (no ``--cfg-options``), so a checkpoint or data path may hold
any character; ``python -m mae_transfer.train CELL_DIR/config.py`` by hand reproduces the cell.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mae_transfer.matrix.plan.planner import Cell, Plan

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.py"  # the cell's resolved training config, in its work dir


def write_resolved_configs(plan: Plan) -> list[Path]:
    """Write ``CELL_DIR/config.py`` for every cell whose config exists: the very file its training reads.

    The launch is the one the cell's resources plan (several processes: torchrun, several
    nodes: srun); ``run`` rewrites the file before each attempt, for the launch it then makes.
    """
    written = []
    for cell in plan.cells:
        if not Path(cell.config).is_file():
            logger.warning("%s: config %s does not exist; not resolved", cell.label, cell.config)
            continue
        launcher = "slurm" if cell.resources.nodes > 1 else "pytorch" if cell.processes > 1 else "none"
        try:
            written.append(write_cell_config(cell, launcher))
        except ConfigDumpError as error:
            logger.warning("%s: %s", cell.label, error)
    logger.info("wrote %d resolved configs", len(written))
    return written


class ConfigDumpError(ValueError):
    """A config could not be parsed, merged with its overrides, or dumped and read back."""


def dump_config(config: str | Path, options: dict, out: Path) -> Path:
    """Write ``config`` with ``options`` merged in as one self-contained config file ``out``.

    The file has no ``_base_`` and no overrides left to pass: ``python -m mae_transfer.train out``
    trains exactly what the options describe, whatever characters their values hold (paths with
    spaces or commas included). It is read back once to prove that it parses.

    Raises:
        ConfigDumpError: the config or the dumped file does not parse.
    """
    from mae_transfer.matrix.plan.config_files import read_config

    try:
        cfg = read_config(config, import_custom_modules=False)
        cfg.merge_from_dict(dict(options))
        text = cfg.pretty_text
    except Exception as error:  # noqa: BLE001 - mmengine raises anything from a config file
        raise ConfigDumpError(f"{config}: cannot resolve with the cell's overrides: {type(error).__name__}: {error}") from error
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    try:
        read_config(out, import_custom_modules=False)
    except Exception as error:  # noqa: BLE001
        raise ConfigDumpError(f"{out}: the dumped config of {config} does not parse back: "
                              f"{type(error).__name__}: {error}") from error
    return out


def launch_options(cell: Cell, launcher: str) -> dict[str, Any]:
    """The cell's overrides plus what this launch needs (gloo DDP on CPU, ``save_best``)."""
    options = dict(cell.cfg_options)
    if launcher in ("pytorch", "slurm") and not _cuda_available():
        # CPU processes (torchrun, or srun over nodes): gloo, and DDP without device ids (mmengine's
        # default passes LOCAL_RANK).
        options["env_cfg.dist_cfg.backend"] = "gloo"
        options.setdefault("model_wrapper_cfg.type", "MMDistributedDataParallel")
        options.setdefault("model_wrapper_cfg.device_ids", None)
        options.setdefault("model_wrapper_cfg.broadcast_buffers", False)
    if cell.checkpoint_policy == "best":
        options["default_hooks.checkpoint.save_best"] = "auto"
    return options


def write_cell_config(cell: Cell, launcher: str) -> Path:
    """Resolve the cell's config for this launch into ``WORK_DIR/config.py`` (see the module docstring).

    Raises:
        ConfigDumpError: the config does not resolve.
    """
    return dump_config(cell.config, launch_options(cell, launcher), Path(cell.work_dir) / CONFIG_NAME)


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False
