"""COCO evaluation pads its input exactly as training does (ViTDet and paper recipes).

Both go through the detector's data preprocessor: normalise, then pad to 1024x1024 with 0 (the
mean pixel after normalisation). Before, training padded that way while the test pipeline
padded raw pixels with 114, which the backbone (absolute positions, 64x64 global attention)
saw as a different image border.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from detection_helpers import COCO_CONFIGS
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from PIL import Image

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks

VITDET_B = next(p for p in COCO_CONFIGS if p.name == "vitdet_mask-rcnn_vit-b_lsj-1024_100e_amp.py")
SIZE = 1024


def _test_input(cfg: Config, image_path: Path) -> dict:
    """The image through the config's test pipeline (annotations left out), collated."""
    steps = [step for step in cfg.test_dataloader.dataset.pipeline if step["type"] != "LoadAnnotations"]
    packed = Compose(steps)(dict(img_path=str(image_path), img_id=0))
    return {"inputs": [packed["inputs"]], "data_samples": [packed["data_samples"]]}


def _as_training(batch: dict) -> dict:
    """The same (already resized) image as a training sample with one instance mask."""
    sample = DetDataSample(metainfo=dict(batch["data_samples"][0].metainfo))
    height, width = batch["inputs"][0].shape[-2:]
    masks = np.zeros((1, height, width), dtype=np.uint8)
    masks[0, 10:50, 20:80] = 1
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[20.0, 10.0, 80.0, 50.0]]),
        labels=torch.tensor([0]),
        masks=BitmapMasks(masks, height, width),
    )
    return {"inputs": [batch["inputs"][0].clone()], "data_samples": [sample]}


@pytest.mark.parametrize("path", [p for p in COCO_CONFIGS if "8xb4" not in p.name], ids=lambda p: p.stem)
def test_test_input_is_padded_like_training_input(path: Path, tmp_path: Path) -> None:
    init_default_scope("mmdet")
    cfg = Config.fromfile(str(path))
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    image_path = tmp_path / "wide.png"
    pixels = np.random.default_rng(0).integers(0, 256, (300, 500, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(image_path)

    batch = _test_input(cfg, image_path)
    assert tuple(batch["inputs"][0].shape[-2:]) == (614, 1024)  # longer side resized to 1024
    test = preprocessor(batch, training=False)
    train = preprocessor(_as_training(batch), training=True)

    assert test["inputs"].shape == train["inputs"].shape == (1, 3, SIZE, SIZE)
    assert torch.equal(test["inputs"], train["inputs"])
    assert torch.count_nonzero(test["inputs"][..., 614:, :]) == 0  # padding = mean pixel, normalised
    assert train["data_samples"][0].gt_instances.masks.masks.shape[-2:] == (SIZE, SIZE)
    assert test["data_samples"][0].batch_input_shape == (SIZE, SIZE)


def test_training_padding_is_mmdet_lsj_batch_fixed_size_pad(tmp_path: Path) -> None:
    """The one padding path gives training batches what mmdet's LSJ recipe (normalise, pad to 32,
    BatchFixedSizePad to 1024 with masks) gives them."""
    init_default_scope("mmdet")
    cfg = Config.fromfile(str(VITDET_B))
    ours = MODELS.build(cfg.model.data_preprocessor)
    base = tmp_path / "mmdet_mask_rcnn.py"
    base.write_text("_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py']\n")
    lsj = Config.fromfile(str(base)).model.data_preprocessor
    lsj.batch_augments = [dict(type="BatchFixedSizePad", size=(SIZE, SIZE), pad_mask=True)]
    mmdet_lsj = MODELS.build(lsj)
    image = torch.randint(0, 256, (3, 700, 900), dtype=torch.uint8)
    batch = {"inputs": [image], "data_samples": [DetDataSample(metainfo=dict(img_shape=(700, 900)))]}
    a, b = ours(_as_training(batch), training=True), mmdet_lsj(_as_training(batch), training=True)
    assert a["inputs"].shape == (1, 3, SIZE, SIZE)
    assert torch.equal(a["inputs"], b["inputs"])
    mask_a = a["data_samples"][0].gt_instances.masks.masks
    mask_b = b["data_samples"][0].gt_instances.masks.masks
    assert mask_a.shape == mask_b.shape and np.array_equal(mask_a, mask_b)
