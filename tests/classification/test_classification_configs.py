"""Every iNaturalist / Places / classification smoke config loads and builds on CPU."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from classification_helpers import REPO
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DATASETS, METRICS, MODELS, PARAM_SCHEDULERS, TRANSFORMS

import mae_transfer.integrations.classification  # noqa: F401  (registers the task)

# the frozen-probe configs (*_probes-*) are built by tests/probes/test_probe_configs.py
PAPER_CONFIGS = sorted(path for path in [*REPO.glob("configs/inat/*.py"), *REPO.glob("configs/places/*.py")]
                       if "_probes-" not in path.stem)
FINETUNE_CONFIGS = [path for path in PAPER_CONFIGS if "_ft-" in path.stem]
LINEAR_CONFIGS = [path for path in PAPER_CONFIGS if "_linear-" in path.stem]
SMOKE_CONFIGS = [REPO / "configs/smoke/inat_finetune.py", REPO / "configs/smoke/places_finetune.py"]
LOADERS = ("train_dataloader", "val_dataloader", "test_dataloader")
BLR = {"vit-base-p16": 5e-4, "vit-large-p16": 1e-3, "vit-huge-p14": 1e-3}  # official FINETUNE.md
LAYER_DECAY = {"vit-base-p16": 0.65, "vit-large-p16": 0.75, "vit-huge-p14": 0.75}  # official FINETUNE.md
DROP_PATH = {"vit-base-p16": 0.1, "vit-large-p16": 0.2, "vit-huge-p14": 0.3}  # official FINETUNE.md
# (per-GPU batch, GPUs, accumulation) = 1024: FINETUNE.md B/L 32 x 4 nodes x 8, H 16 x 8 nodes x 8;
# H at 448: 8 per GPU (MMPretrain's 32xb8 448 config) x 32 GPUs x 4
BATCH = {("vit-base-p16", 224): (32, 32, 1), ("vit-large-p16", 224): (32, 32, 1),
         ("vit-huge-p14", 224): (16, 64, 1), ("vit-huge-p14", 448): (8, 32, 4)}


def _id(path: Path) -> str:
    return path.stem


def test_every_table6_cell_has_a_config() -> None:
    names = {path.stem for path in PAPER_CONFIGS}
    for dataset in ("inat2017", "inat2018", "inat2019", "places205", "places365"):
        for arch in ("vit-base-p16_ft-amp-100e", "vit-large-p16_ft-amp-50e", "vit-huge-p14_ft-amp-50e"):
            assert f"{arch}_{dataset}-224" in names
        assert f"vit-huge-p14_ft-amp-50e_{dataset}-448" in names
    assert len(FINETUNE_CONFIGS) == 20
    assert len(LINEAR_CONFIGS) == 15
    assert set(PAPER_CONFIGS) == {*FINETUNE_CONFIGS, *LINEAR_CONFIGS}


@pytest.mark.parametrize("path", FINETUNE_CONFIGS, ids=_id)
def test_paper_config_follows_the_recipe(path: Path) -> None:
    cfg = Config.fromfile(str(path))
    arch, recipe, dataset = path.stem.split("_")
    assert all(cfg[loader].dataset.num_classes == cfg.model.num_classes for loader in LOADERS)
    # names must be true: "amp" means AmpOptimWrapper, "100e"/"50e" the epochs, 224/448 the input
    assert ("-amp-" in recipe) == (cfg.optim_wrapper.type == "AmpOptimWrapper")
    epochs = int(re.search(r"(\d+)e$", recipe).group(1))
    assert cfg.train_cfg.max_epochs == epochs == cfg.param_scheduler[-1].end
    size = int(dataset.rsplit("-", 1)[1])
    assert cfg.model.backbone.img_size == size
    assert cfg.train_dataloader.dataset.pipeline[1].input_size == size
    assert cfg.val_dataloader.dataset.pipeline[1].input_size == size
    # lr = blr x 1024 / 256 with 1024 = per-GPU batch x GPUs x accumulation steps
    per_gpu, gpus, accumulation = BATCH[(arch, size)]
    assert cfg.train_dataloader.batch_size == per_gpu
    assert cfg.optim_wrapper.get("accumulative_counts", 1) == accumulation
    assert per_gpu * gpus * accumulation == 1024
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(BLR[arch] * 1024 / 256)
    assert cfg.optim_wrapper.paramwise_cfg.layer_decay_rate == LAYER_DECAY[arch]
    assert cfg.model.backbone.drop_path_rate == DROP_PATH[arch]
    assert cfg.train_dataloader.drop_last  # Mixup/CutMix needs even batches
    assert cfg.model.pretrained is None and cfg.model.protocol.name == "finetune"


@pytest.mark.parametrize("path", LINEAR_CONFIGS, ids=_id)
def test_linear_config_matches_its_name(path: Path) -> None:
    cfg = Config.fromfile(str(path))
    arch, recipe, dataset = path.stem.split("_")
    assert recipe == "linear-amp-90e" and cfg.optim_wrapper.type == "AmpOptimWrapper"
    assert cfg.train_cfg.max_epochs == 90 == cfg.param_scheduler[-1].end
    assert cfg.model.backbone.arch.replace("_", "-").replace("patch", "p") == arch
    assert dataset.endswith("-224") and cfg.model.backbone.img_size == 224
    assert cfg.val_dataloader.dataset.pipeline[1].input_size == 224
    assert cfg.train_dataloader.dataset.pipeline[1].type == "MAETransferLinearProbeTransform"
    assert all(cfg[loader].dataset.num_classes == cfg.model.num_classes for loader in LOADERS)
    assert cfg.model.protocol.name == "linear" and cfg.optim_wrapper.optimizer.type == "MAETransferLars"


def _build_everything(cfg: Config) -> None:
    # the configured arch, width and resolution, but 2 blocks: ViT-H's 32 would take GBs on CPU
    model = MODELS.build({**cfg.model, "backbone": {**cfg.model.backbone, "depth": 2}})
    assert model.head.out_features == cfg.model.num_classes
    wrapper_cfg = dict(cfg.optim_wrapper)
    if wrapper_cfg["type"] == "AmpOptimWrapper":  # asserts a GPU at build; same optimizer otherwise
        wrapper_cfg["type"] = "OptimWrapper"
        wrapper_cfg.pop("loss_scale", None)
    wrapper = build_optim_wrapper(model, wrapper_cfg)
    if cfg.optim_wrapper.get("constructor") == "MAETransferLayerDecayOptimWrapperConstructor":
        assert len(wrapper.optimizer.param_groups) > 1  # layer decay groups
    for scheduler in cfg.param_scheduler:
        PARAM_SCHEDULERS.build(scheduler, default_args=dict(optimizer=wrapper, epoch_length=10))
    for loader in LOADERS:
        dataset_cfg = cfg[loader].dataset
        dataset = DATASETS.build({**dataset_cfg, "lazy_init": True})
        assert dataset.num_classes == cfg.model.num_classes
        for step in dataset_cfg.pipeline:
            TRANSFORMS.build(step)
    METRICS.build(cfg.val_evaluator)


@pytest.mark.parametrize("path", [*PAPER_CONFIGS, *SMOKE_CONFIGS], ids=_id)
def test_config_builds_on_cpu(path: Path) -> None:
    _build_everything(Config.fromfile(str(path)))


@pytest.mark.parametrize("path", SMOKE_CONFIGS, ids=_id)
def test_smoke_config_documents_its_override_keys(path: Path) -> None:
    text = path.read_text()
    cfg = Config.fromfile(str(path))
    assert "data_root" in cfg and "pretrained" in cfg
    for key in ("train_dataloader.dataset.data_root", "val_dataloader.dataset.data_root",
                "test_dataloader.dataset.data_root", "model.pretrained", "model.num_classes"):
        assert key in text
        node = cfg
        for part in key.split("."):
            node = node[part]  # the documented path exists in the config
    assert cfg.optim_wrapper.type == "OptimWrapper"  # the name says no amp


def test_linear_probe_base_builds_with_a_dataset_base(tmp_path: Path) -> None:
    base = REPO / "configs" / "_base_" / "classification"
    leaf = tmp_path / "linear_probe_inat2017.py"
    leaf.write_text(
        f'_base_ = ["{base / "inat2017.py"}", "{base / "linear_probe.py"}"]\n'
        'model = dict(num_classes=5089)\n'
        "train_dataloader = dict(batch_size=512, dataset=dict(pipeline={{_base_.linear_probe_train_pipeline}}))\n"
    )
    cfg = Config.fromfile(str(leaf))
    # MAE's weak linear-probe augmentation replaces timm's (RandAugment, random erasing) entirely
    assert [step.type for step in cfg.train_dataloader.dataset.pipeline] == [
        "MAETransferLoadRGBImage", "MAETransferLinearProbeTransform", "MAETransferPackClassificationInputs"]
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(0.1 * 16384 / 256)
    _build_everything(cfg)
    model = MODELS.build({**cfg.model, "backbone": {**cfg.model.backbone, "depth": 2}})
    assert {name for name, p in model.named_parameters() if p.requires_grad} == {"head.weight", "head.bias"}
