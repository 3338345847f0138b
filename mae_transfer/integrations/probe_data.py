"""The probe's datasets, built from a config's ``train_dataloader`` / ``val_dataloader`` (mmengine).

The training images are built twice from ``train_dataloader.dataset``: with its own pipeline
(the training augmentation) and with ``val_dataloader.dataset.pipeline`` (the evaluation
transform, for the k-NN bank and the hold-out scores). Labels and ids come from the datasets'
data lists, so no image is decoded to split the hold-out. The cache key is made of the
backbone's weights digest and options, each split's dataset description (type, root,
annotation file, prefix, sample count, digest of the sample ids), the resolution and the
evaluation pipeline.
"""

from __future__ import annotations

import copy
import hashlib
import os
from typing import Any, Mapping

from mmengine.registry import DATASETS
from torch import nn

from mae_transfer.probes import ProbeData, weights_digest
from mae_transfer.probes.cache import canonical


class ProbeDataError(ValueError):
    """The config's datasets do not fit a probe (mismatched classes, no images); names the key."""


def _ids(dataset: Any) -> list[str]:
    root = getattr(dataset, "data_root", "") or ""
    ids = []
    for index in range(len(dataset)):
        path = dataset.get_data_info(index)["img_path"]
        ids.append(os.path.relpath(path, root) if root else path)
    return ids


def _description(cfg: Mapping[str, Any], ids: list[str]) -> str:
    keys = ("type", "data_root", "ann_file", "data_prefix", "num_classes", "indices")
    described = {key: cfg.get(key) for key in keys if cfg.get(key) is not None}
    described["num_samples"] = len(ids)
    described["ids_sha256"] = hashlib.sha256("\n".join(ids).encode()).hexdigest()
    return canonical(described)


def _resolution(pipeline: list[Mapping[str, Any]], backbone_cfg: Mapping[str, Any]) -> int:
    sizes = [step.get("input_size") for step in pipeline if isinstance(step, Mapping) and step.get("input_size")]
    if sizes:
        return int(sizes[-1])
    size = backbone_cfg.get("img_size", 224)
    return int(size if isinstance(size, int) else size[0])


def _classes(dataset: Any, where: str) -> tuple:
    classes = tuple(dataset.metainfo.get("classes", ()))
    if not classes:
        raise ProbeDataError(f"{where}: the dataset declares no classes (metainfo['classes'])")
    return classes


def build_probe_data(train_loader: Mapping[str, Any], val_loader: Mapping[str, Any],
                     backbone: nn.Module, backbone_cfg: Mapping[str, Any]) -> ProbeData:
    """The three views of the data and the cache key, from the two dataloader configs."""
    train_cfg = copy.deepcopy(dict(train_loader["dataset"]))
    val_cfg = copy.deepcopy(dict(val_loader["dataset"]))
    plain_cfg = {**copy.deepcopy(train_cfg), "pipeline": copy.deepcopy(val_cfg["pipeline"]), "test_mode": True}
    train, plain, val = DATASETS.build(train_cfg), DATASETS.build(plain_cfg), DATASETS.build(val_cfg)
    classes = _classes(train, "train_dataloader.dataset")
    if _classes(val, "val_dataloader.dataset") != classes:
        raise ProbeDataError(f"val_dataloader.dataset: {len(_classes(val, 'val'))} classes differ from "
                             f"train_dataloader.dataset's {len(classes)}; a probe needs one label space")
    if not len(train) or not len(val):
        raise ProbeDataError(f"train_dataloader.dataset / val_dataloader.dataset: {len(train)} / {len(val)} images; "
                             f"a probe needs both")
    labels = [int(train.get_data_info(i)["gt_label"]) for i in range(len(train))]
    train_ids, val_ids = _ids(train), _ids(val)
    cache_key = {
        "weights": weights_digest(backbone),
        "backbone": canonical(dict(backbone_cfg)),
        "resolution": _resolution(val_cfg["pipeline"], backbone_cfg),
        "transform": canonical(val_cfg["pipeline"]),
        "datasets": {"train": _description(train_cfg, train_ids), "val": _description(val_cfg, val_ids)},
    }
    return ProbeData(train=train, train_plain=plain, val=val, train_labels=labels, train_ids=train_ids,
                     num_classes=len(classes), cache_key=cache_key)
