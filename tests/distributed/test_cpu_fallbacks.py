"""`apply_cpu_fallbacks`: what a config needs to run without a GPU, each change declared."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from mmengine.config import Config
from training_helpers import REPO

from mae_transfer.integrations.cpu_fallbacks import Deviation, apply_cpu_fallbacks, write_deviations

PAPER_B = REPO / "configs" / "coco" / "mae-fpn_mask-rcnn_vit-b_lsj-1024_100e_amp.py"
ADE20K = sorted((REPO / "configs" / "ade20k").glob("*.py"))


def _toy(**extra) -> Config:
    return Config(dict(
        model=dict(
            backbone=dict(type="MAETransferViT", adapter="multi_level", adapter_norm="syncbn"),
            neck=dict(type="MAETransferSimpleFeaturePyramid", norm="syncbn"),
            heads=[dict(norm_cfg=dict(type="SyncBN", requires_grad=True)), dict(norm_cfg=dict(type="MMSyncBN"))],
            keep=dict(norm_cfg=dict(type="BN"), norm="ln"),
        ),
        optim_wrapper=dict(type="AmpOptimWrapper", loss_scale="dynamic", optimizer=dict(type="AdamW", lr=1e-4)),
        env_cfg=dict(dist_cfg=dict(backend="nccl")),
        **{"launcher": "none", **extra},
    ))


def _sync_bn_left(node) -> list:
    if isinstance(node, dict):
        return [v for k, v in node.items() if v in ("SyncBN", "MMSyncBN", "syncbn")] + [
            x for v in node.values() for x in _sync_bn_left(v)]
    if isinstance(node, list):
        return [x for item in node for x in _sync_bn_left(item)]
    return []


def test_a_gpu_machine_changes_nothing() -> None:
    cfg = _toy(launcher="pytorch")
    before = copy.deepcopy(cfg.to_dict())
    assert apply_cpu_fallbacks(cfg, gpu_available=True) == []
    assert cfg.to_dict() == before


def test_single_process_without_gpu_runs_fp32_with_bn() -> None:
    cfg = _toy()
    deviations = apply_cpu_fallbacks(cfg, gpu_available=False)
    changed = {d.key: (d.before, d.after) for d in deviations}
    assert changed == {
        "optim_wrapper.type": ("AmpOptimWrapper", "OptimWrapper"),
        "model.backbone.adapter_norm": ("syncbn", "bn"),
        "model.neck.norm": ("syncbn", "bn"),
        "model.heads.0.norm_cfg.type": ("SyncBN", "BN"),
        "model.heads.1.norm_cfg.type": ("MMSyncBN", "BN"),
    }
    assert cfg.optim_wrapper.type == "OptimWrapper" and "loss_scale" not in cfg.optim_wrapper
    assert "loss_scale dropped" in next(d.reason for d in deviations if d.key == "optim_wrapper.type")
    assert cfg.model.keep == dict(norm_cfg=dict(type="BN"), norm="ln")
    assert "model_wrapper_cfg" not in cfg and cfg.env_cfg.dist_cfg.backend == "nccl"


def test_distributed_without_gpu_gets_gloo_and_a_cpu_ddp_wrapper() -> None:
    cfg = _toy(launcher="pytorch", sync_bn="torch")
    keys = [d.key for d in apply_cpu_fallbacks(cfg, gpu_available=False)]
    assert {"env_cfg.dist_cfg.backend", "model_wrapper_cfg.device_ids", "sync_bn"} <= set(keys)
    assert cfg.env_cfg.dist_cfg.backend == "gloo" and cfg.sync_bn is None
    # mmengine's own defaults (Runner.wrap_model), device ids left out for CPU modules
    assert cfg.model_wrapper_cfg == dict(
        type="MMDistributedDataParallel", broadcast_buffers=False, find_unused_parameters=False, device_ids=None)


def test_a_configured_wrapper_keeps_its_options() -> None:
    cfg = _toy(launcher="pytorch", model_wrapper_cfg=dict(type="MMDistributedDataParallel", broadcast_buffers=True))
    apply_cpu_fallbacks(cfg, gpu_available=False)
    assert cfg.model_wrapper_cfg == dict(type="MMDistributedDataParallel", broadcast_buffers=True, device_ids=None)


def test_paper_recipe_on_cpu(tmp_path: Path) -> None:
    cfg = Config.fromfile(str(PAPER_B))
    cfg.launcher = "pytorch"
    deviations = apply_cpu_fallbacks(cfg, gpu_available=False)
    keys = {d.key for d in deviations}
    assert {"optim_wrapper.type", "model.neck.norm_cfg.type", "model.roi_head.bbox_head.norm_cfg.type",
            "model.roi_head.mask_head.norm_cfg.type"} <= keys
    assert _sync_bn_left(cfg.model.to_dict()) == []
    path = write_deviations(tmp_path / "deviations.json", deviations)
    written = json.loads(path.read_text())
    assert isinstance(written, list) and all(set(entry) == {"key", "from", "to", "reason"} for entry in written)
    assert written[0] == deviations[0].to_dict()


@pytest.mark.parametrize("path", ADE20K, ids=lambda p: p.stem)
def test_ade20k_configs_lose_every_sync_bn(path: Path) -> None:
    cfg = Config.fromfile(str(path))
    cfg.launcher = "pytorch"
    had = _sync_bn_left(cfg.model.to_dict())
    deviations = apply_cpu_fallbacks(cfg, gpu_available=False)
    assert _sync_bn_left(cfg.model.to_dict()) == []
    assert len([d for d in deviations if d.after == "BN" or d.after == "bn"]) == len(had)


def test_deviation_entry_format() -> None:
    deviation = Deviation("optim_wrapper.type", "AmpOptimWrapper", "OptimWrapper", "no GPU")
    assert deviation.to_dict() == {"key": "optim_wrapper.type", "from": "AmpOptimWrapper", "to": "OptimWrapper",
                                   "reason": "no GPU"}
    assert "AmpOptimWrapper" in deviation.describe()
