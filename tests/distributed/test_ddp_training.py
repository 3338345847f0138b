"""Every task family trains and evaluates under 2-process DDP with mmengine's defaults.

Each test runs ``python -m torch.distributed.run --nproc-per-node 2 tools/train.py CONFIG
--launcher pytorch`` on CPU (gloo), exactly as a user would, with mmengine's DDP wrapper
defaults (``find_unused_parameters=False``): a parameter that receives no gradient aborts the
run at its second iteration. Checked per run: at least 3 optimizer steps on each rank, finite
losses, an evaluation, and identical parameters on both ranks afterwards (see ddp_helpers).
"""

from __future__ import annotations

import json
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


def _family_checkpoint(family: str, root: Path, pretrained_key: str = "model.backbone.pretrained",
                       **shape) -> dict[str, object]:
    """cfg-options loading a tiny random encoder of ``family`` written in the family's own layout."""
    from mae_transfer.checkpoints.families.native import write_native
    from mae_transfer.models import build_vit

    encoder = build_vit("vit_tiny_patch16", family=family, depth=4, **shape)
    path = write_native(family, encoder.state_dict(), root / f"{family}_native.pth")
    return {"model.backbone.family": family, pretrained_key: str(path)}


# the MAE encoder, and DINOv2 with registers (LayerScale; registers dropped before window attention)
FAMILIES = {"mae": False, "dinov2_reg": True}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_coco_window_attention(family: str, tiny_coco: Path, tmp_path: Path) -> None:
    """ViTDet path: window + global blocks, decomposed rel-pos, simple feature pyramid."""
    options = _coco_options(tiny_coco)
    if FAMILIES[family]:
        options.update(_family_checkpoint(family, tmp_path, img_size=128))
    run = run_ddp(SMOKE / "coco_maskrcnn.py", tmp_path, options)
    check_ddp_run(run, STEPS)
    names = run.ranks[0]["final"]
    assert not any(".cls_token" in name or ".reg_token" in name or ".vit.norm." in name for name in names)
    assert _wrapper_deviation(run)["to"] is None
    if FAMILIES[family]:
        assert "backbone.vit.blocks.3.ls2.gamma" in names  # LayerScale kept
        load = json.loads((tmp_path / "load_report.json").read_text())
        assert load["family"] == "dinov2_reg" and load["format"] == "dinov2"


def test_coco_multi_level_with_sync_bn(tiny_coco: Path, tmp_path: Path) -> None:
    """MAE A.3 path: four taps rescaled, mmdet FPN and heads with SyncBN (BN on CPU), shared rel-pos."""
    run = run_ddp(SMOKE / "coco_maskrcnn_multilevel.py", tmp_path, _coco_options(tiny_coco))
    check_ddp_run(run, STEPS)
    names = run.ranks[0]["final"]
    assert "backbone.vit.shared_rel_pos.window.relative_position_bias_table" in names
    sync_bn = {d["key"] for d in run.deviations if d["from"] == "SyncBN"}
    assert {"model.neck.norm_cfg.type", "model.roi_head.bbox_head.norm_cfg.type"} <= sync_bn


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_ade20k_upernet(family: str, tiny_ade20k: Path, tmp_path: Path) -> None:
    options = {
        **{f"{split}_dataloader.dataset.data_root": str(tiny_ade20k) for split in ("train", "val", "test")},
        "train_dataloader.batch_size": 2,
        "train_cfg.max_iters": STEPS,
        "train_cfg.val_interval": STEPS,
        "default_hooks.checkpoint.interval": STEPS,
    }
    if FAMILIES[family]:
        options.update(_family_checkpoint(family, tmp_path, img_size=128, rel_pos_bias=True))
    run = run_ddp(SMOKE / "ade20k_upernet.py", tmp_path, options)
    check_ddp_run(run, STEPS)
    names = run.ranks[0]["final"]
    assert not any(name.startswith("backbone.vit.norm.") for name in names)
    if FAMILIES[family]:  # registers run through the global blocks and train
        first = run.ranks[0]
        assert first["final"]["backbone.vit.reg_token"] != first["initial"]["backbone.vit.reg_token"]


PROTOCOLS = {name: protocol_options(name) for name in ("finetune", "linear", "partial-1", "partial-mlp")}
# every protocol on the MAE encoder; fine-tuning of a family without class token (SigLIP)
CASES = [(protocol, "mae") for protocol in sorted(PROTOCOLS)] + [("finetune", "siglip")]


@pytest.mark.parametrize("protocol, family", CASES)
def test_classification_protocol(protocol: str, family: str, tiny_inat: Path, tmp_path: Path) -> None:
    # 16 train images / 2 ranks / batch 4 = 2 steps per epoch; 2 epochs = 4 steps
    options = {
        **{f"{split}_dataloader.dataset.data_root": str(tiny_inat) for split in ("train", "val", "test")},
        "train_dataloader.batch_size": 4,
        "train_cfg.max_epochs": 2,
        "train_cfg.val_interval": 2,
        **PROTOCOLS[protocol],
    }
    if family != "mae":
        options.update(_family_checkpoint(family, tmp_path, "model.pretrained", img_size=64))
    run = run_ddp(SMOKE / "inat_finetune.py", tmp_path, options)
    check_ddp_run(run, STEPS)
    first = run.ranks[0]
    changed = {name for name in first["final"] if first["final"][name] != first["initial"][name]}
    if protocol == "linear":
        assert changed == {"head.weight", "head.bias"}
    else:
        assert "head.weight" in changed and any(name.startswith("backbone.blocks.") for name in changed)
