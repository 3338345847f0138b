"""Every task family trains and evaluates under 2-process DDP with mmengine's defaults.

Each test runs ``python -m torch.distributed.run --nproc-per-node 2 tools/train.py CONFIG
--launcher pytorch`` on CPU (gloo), exactly as a user would, with mmengine's DDP wrapper
defaults (``find_unused_parameters=False``): a parameter that receives no gradient aborts the
run at its second iteration. Checked per run: at least 3 optimizer steps on each rank, finite
losses, an evaluation, and identical parameters on both ranks afterwards (see ddp_helpers).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ddp_helpers import check_ddp_run, run_ddp
from training_helpers import REPO

from mae_transfer.matrix.spec.tasks import protocol_options

pytestmark = pytest.mark.slow

SMOKE = REPO / "configs" / "smoke"
STEPS = 3


def _coco_options(root: Path) -> dict[str, object]:
    ann_file = f"{root}/annotations/instances_val2017.json"
    return {
        **{f"{split}_dataloader.dataset.data_root": f"{root}/" for split in ("train", "val", "test")},
        "val_evaluator.ann_file": ann_file,
        "test_evaluator.ann_file": ann_file,
        "train_dataloader.batch_size": 2,
        "train_cfg.max_iters": STEPS,
        "train_cfg.val_interval": STEPS,
        "default_hooks.checkpoint.interval": STEPS,
    }


def _wrapper_deviation(run) -> dict:
    return next(d for d in run.deviations if d["key"] == "model_wrapper_cfg.device_ids")


def test_coco_window_attention(tiny_coco: Path, tmp_path: Path) -> None:
    """ViTDet path: window + global blocks, decomposed rel-pos, simple feature pyramid."""
    run = run_ddp(SMOKE / "coco_maskrcnn.py", tmp_path, _coco_options(tiny_coco))
    check_ddp_run(run, STEPS)
    assert not any(".cls_token" in name or ".vit.norm." in name for name in run.ranks[0]["final"])
    assert _wrapper_deviation(run)["to"] is None


def test_coco_multi_level_with_sync_bn(tiny_coco: Path, tmp_path: Path) -> None:
    """MAE A.3 path: four taps rescaled, mmdet FPN and heads with SyncBN (BN on CPU), shared rel-pos."""
    run = run_ddp(SMOKE / "coco_maskrcnn_multilevel.py", tmp_path, _coco_options(tiny_coco))
    check_ddp_run(run, STEPS)
    names = run.ranks[0]["final"]
    assert "backbone.vit.shared_rel_pos.window.relative_position_bias_table" in names
    sync_bn = {d["key"] for d in run.deviations if d["from"] == "SyncBN"}
    assert {"model.neck.norm_cfg.type", "model.roi_head.bbox_head.norm_cfg.type"} <= sync_bn


def test_ade20k_upernet(tiny_ade20k: Path, tmp_path: Path) -> None:
    options = {
        **{f"{split}_dataloader.dataset.data_root": str(tiny_ade20k) for split in ("train", "val", "test")},
        "train_dataloader.batch_size": 2,
        "train_cfg.max_iters": STEPS,
        "train_cfg.val_interval": STEPS,
        "default_hooks.checkpoint.interval": STEPS,
    }
    run = run_ddp(SMOKE / "ade20k_upernet.py", tmp_path, options)
    check_ddp_run(run, STEPS)
    assert not any(name.startswith("backbone.vit.norm.") for name in run.ranks[0]["final"])


PROTOCOLS = {name: protocol_options(name) for name in ("finetune", "linear", "partial-1", "partial-mlp")}


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_classification_protocol(protocol: str, tiny_inat: Path, tmp_path: Path) -> None:
    # 16 train images / 2 ranks / batch 4 = 2 steps per epoch; 2 epochs = 4 steps
    options = {
        **{f"{split}_dataloader.dataset.data_root": str(tiny_inat) for split in ("train", "val", "test")},
        "train_dataloader.batch_size": 4,
        "train_cfg.max_epochs": 2,
        "train_cfg.val_interval": 2,
        **PROTOCOLS[protocol],
    }
    run = run_ddp(SMOKE / "inat_finetune.py", tmp_path, options)
    check_ddp_run(run, STEPS)
    first = run.ranks[0]
    changed = {name for name in first["final"] if first["final"][name] != first["initial"][name]}
    if protocol == "linear":
        assert changed == {"head.weight", "head.bias"}
    else:
        assert "head.weight" in changed and any(name.startswith("backbone.blocks.") for name in changed)
