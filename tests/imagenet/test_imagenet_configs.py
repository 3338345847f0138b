"""Every ImageNet-1k config loads and builds (depth cut) on generated data, and its name is true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DATASETS, METRICS, MODELS, PARAM_SCHEDULERS, TRANSFORMS

import mae_transfer.integrations.classification  # noqa: F401  (registers the task)
from mae_transfer.data import make_dataset

REPO = Path(__file__).resolve().parents[2]
# the frozen-probe configs (*_probes-*) are built by tests/probes/test_probe_configs.py
CONFIGS = sorted(path for path in (REPO / "configs" / "imagenet").glob("*.py") if "_probes-" not in path.stem)
LOADERS = ("train_dataloader", "val_dataloader", "test_dataloader")
BLR = {"vit-base-p16": 5e-4, "vit-large-p16": 1e-3, "vit-huge-p14": 1e-3}  # FINETUNE.md
ARCHS = {"vit-base-p16": "vit_base_patch16", "vit-large-p16": "vit_large_patch16", "vit-huge-p14": "vit_huge_patch14"}


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory) -> Path:
    return make_dataset("imagenet", tmp_path_factory.mktemp("in1k") / "imagenet", num_classes=3, train_per_class=1,
                        val_per_class=1, image_size=16)


def test_every_protocol_has_a_config() -> None:
    assert {p.stem for p in CONFIGS} == {
        "vit-base-p16_ft-amp-100e_in1k-224", "vit-large-p16_ft-amp-50e_in1k-224", "vit-huge-p14_ft-amp-50e_in1k-224",
        "vit-huge-p14_ft-amp-50e_in1k-448",
        "vit-base-p16_linear-amp-90e_in1k-224", "vit-large-p16_linear-amp-90e_in1k-224", "vit-huge-p14_linear-amp-90e_in1k-224",
        "vit-large-p16_partial-1blk-amp-200e_in1k-224", "vit-large-p16_partial-mlp-amp-200e_in1k-224",
    }


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_name_is_true(path: Path) -> None:
    cfg = Config.fromfile(str(path))
    arch, recipe, dataset = path.stem.split("_")
    size = int(dataset.rsplit("-", 1)[1])
    assert cfg.model.backbone.arch == ARCHS[arch] and cfg.model.backbone.img_size == size
    assert cfg.model.num_classes == 1000 and all(cfg[loader].dataset.num_classes == 1000 for loader in LOADERS)
    assert cfg.train_dataloader.dataset.data_prefix.img_path == "train"
    assert cfg.val_dataloader.dataset.data_prefix.img_path == "val"
    assert ("-amp-" in recipe) == (cfg.optim_wrapper.type == "AmpOptimWrapper")
    epochs = int(re.search(r"(\d+)e$", recipe).group(1))
    assert cfg.train_cfg.max_epochs == epochs == cfg.param_scheduler[-1].end
    assert cfg.train_dataloader.dataset.pipeline[1].input_size == size
    assert cfg.val_dataloader.dataset.pipeline[1].input_size == size
    protocol = cfg.model.protocol if isinstance(cfg.model.protocol, str) else cfg.model.protocol.name
    accumulation = cfg.optim_wrapper.get("accumulative_counts", 1)
    if recipe.startswith("linear"):
        assert protocol == "linear" and cfg.optim_wrapper.optimizer.type == "MAETransferLars"
        assert cfg.train_dataloader.batch_size * 32 == 16384  # Table 10; 32 GPUs
        assert cfg.optim_wrapper.optimizer.lr == pytest.approx(0.1 * 16384 / 256) and cfg.param_scheduler[0].end == 10
        assert cfg.train_dataloader.dataset.pipeline[1].type == "MAETransferLinearProbeTransform"  # crop + flip only
    else:
        expected = ("partial-mlp" if recipe.startswith("partial-mlp") else
                    "partial" if recipe.startswith("partial-1blk") else "finetune")
        assert protocol == expected and (expected != "partial" or cfg.model.protocol.num_blocks == 1)
        assert cfg.train_dataloader.batch_size * 32 * accumulation == 1024
        assert cfg.optim_wrapper.optimizer.lr == pytest.approx(BLR[arch] * 1024 / 256)
    if size == 448:  # main_finetune.py: crop_pct 1.0 above 224 -> resize 448, centre crop 448
        assert cfg.val_dataloader.dataset.pipeline[1].crop_pct == 1.0
        transform = TRANSFORMS.build(cfg.val_dataloader.dataset.pipeline[1]).transform
        assert [type(t).__name__ for t in transform.transforms][:2] == ["Resize", "CenterCrop"]
        assert transform.transforms[0].size == 448 and transform.transforms[1].size == (448, 448)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_builds_on_generated_imagenet(path: Path, imagenet: Path) -> None:
    cfg = Config.fromfile(str(path))
    model = MODELS.build({**cfg.model, "num_classes": 3, "backbone": {**cfg.model.backbone, "depth": 2}})
    wrapper_cfg = dict(cfg.optim_wrapper)
    if wrapper_cfg["type"] == "AmpOptimWrapper":  # asserts a GPU at build; the same optimizer otherwise
        wrapper_cfg["type"] = "OptimWrapper"
        wrapper_cfg.pop("loss_scale", None)
    wrapper = build_optim_wrapper(model, wrapper_cfg)
    for scheduler in cfg.param_scheduler:
        PARAM_SCHEDULERS.build(scheduler, default_args=dict(optimizer=wrapper, epoch_length=10))
    for loader in LOADERS:
        dataset = DATASETS.build({**cfg[loader].dataset, "data_root": str(imagenet), "num_classes": 3})
        assert len(dataset) == 3 and dataset.metainfo["classes"][0] == "n01440764"
        sample = dataset[0]  # the real pipeline on a real file
        assert sample["inputs"].shape[-1] == cfg.model.backbone.img_size
    METRICS.build(cfg.val_evaluator)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    if "partial-1blk" in path.stem:
        assert {n for n in trainable if n.startswith("backbone.")} == {
            n for n, _ in model.named_parameters() if n.startswith("backbone.blocks.1.")}
    if "partial-mlp" in path.stem:
        assert {n for n in trainable if n.startswith("backbone.")} == {
            n for n, _ in model.named_parameters()
            if n.startswith(("backbone.blocks.1.mlp.", "backbone.blocks.1.norm2."))}
    if "linear" in path.stem:
        assert trainable == {"head.weight", "head.bias"}
