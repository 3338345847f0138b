"""Resolved configs: each cell's config with its ``--cfg-options`` applied, dumped beside it."""

from __future__ import annotations

import logging
from pathlib import Path

from mae_transfer.matrix.planner import Plan

logger = logging.getLogger(__name__)


def write_resolved_configs(plan: Plan) -> list[Path]:
    """Write ``CELL_DIR/resolved_config.py`` for every cell whose config exists (needs mmengine)."""
    from mmengine.config import Config

    written = []
    parsed: dict[str, Config] = {}
    for cell in plan.cells:
        if not Path(cell.config).is_file():
            logger.warning("%s: config %s does not exist; not resolved", cell.label, cell.config)
            continue
        if cell.config not in parsed:
            parsed[cell.config] = Config.fromfile(cell.config)
        cfg = parsed[cell.config].copy()
        cfg.merge_from_dict(dict(cell.cfg_options))
        out = Path(cell.work_dir) / "resolved_config.py"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(cfg.pretty_text)
        written.append(out)
    logger.info("wrote %d resolved configs", len(written))
    return written
