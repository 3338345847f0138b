"""A real smoke cell with gradient accumulation 2: the planned steps are the steps the optimizer took."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from matrix_helpers import cli

pytestmark = pytest.mark.slow

# The ADE20K smoke recipe (batch 4) on one CPU process limited to 2 images: 2 x accumulation 2.
# Its schedule is cut to 4 optimizer steps (2 warmup); the planner doubles every iteration key.
MATRIX = """
name: acc
backbones:
  - {name: tiny, checkpoint: "generate:vit_tiny_patch16", depth: 4}
datasets:
  ade20k: {generate: true}
resources: {gpus_per_cell: 0, time_limit_hours: 1, max_per_gpu_batch: 2}
tasks:
  - {task: ade20k-upernet, recipe: smoke, overrides: {train_cfg.max_iters: 4, train_cfg.val_interval: 4,
     param_scheduler.0.end: 2, param_scheduler.1.begin: 2, param_scheduler.1.end: 4,
     default_hooks.checkpoint.interval: 4}}
"""


def test_accumulation_two_runs_the_planned_optimizer_steps(tmp_path: Path, env) -> None:
    matrix = tmp_path / "m.yaml"
    matrix.write_text(MATRIX)
    (cell,) = json.loads(cli(["plan", str(matrix), "--json"], env).stdout)["cells"]
    assert (cell["effective_batch"], cell["per_gpu_batch"], cell["accumulation"]) == (4, 2, 2)
    options = cell["cfg_options"]
    assert (options["train_cfg.max_iters"], options["param_scheduler.0.end"], options["param_scheduler.1.end"]) == (8, 4, 8)

    run = cli(["run", str(matrix)], env, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr[-4000:]
    train = Path(cell["work_dir"]) / "train"
    from mmengine.config import Config

    dumped = Config.fromfile(str(train / "config.py"), import_custom_modules=False)  # mmengine dumps CELL_DIR/config.py
    assert (dumped.train_dataloader.batch_size, dumped.optim_wrapper.accumulative_counts) == (2, 2)
    assert (dumped.train_cfg.max_iters, dumped.param_scheduler[1].end) == (8, 8)
    # AdamW counts its own updates: 8 dataloader iterations with accumulation 2 = 4 optimizer steps.
    state = torch.load(train / "iter_8.pth", map_location="cpu", weights_only=False)["optimizer"]["state"]
    assert state and {int(entry["step"]) for entry in state.values()} == {4}
    result = json.loads((Path(cell["work_dir"]) / "result.json").read_text())["provenance"]
    assert (result["effective_batch"], result["per_gpu_batch"], result["accumulation"]) == (4, 2, 2)
    assert result["effective_batch"] == cell["effective_batch"] and result["off_recipe"] is False
