"""Resolved recipes: what a matrix cell really runs (linear probe, partial fine-tuning, 448 eval)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from classification_helpers import REPO, build_runner
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, OPTIMIZERS, TRANSFORMS
from PIL import Image
from torchvision import transforms as tv

import mae_transfer.integrations.classification  # noqa: F401  (registers the task)
from mae_transfer.classification.protocols import Protocol
from mae_transfer.classification.transforms import LinearProbeTransform, TimmTransform
from mae_transfer.data import make_dataset
from mae_transfer.matrix.plan.planner import plan_matrix
from mae_transfer.matrix.spec.matrix_spec import load_spec
from mae_transfer.optim import LARS

DATASETS = {"inat2017": 5089, "inat2018": 8142, "inat2019": 1010, "places205": 205, "places365": 365}
ARCHS = {"vit_base_patch16": "vit-base-p16", "vit_large_patch16": "vit-large-p16", "vit_huge_patch14": "vit-huge-p14"}
LOADERS = ("train_dataloader", "val_dataloader", "test_dataloader")


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAE_TRANSFER_CACHE", str(tmp_path / "cache"))


def _cells(tmp_path: Path, protocol: str, resolution: int = 224) -> list:
    """Plan one cell per dataset x arch through the real planner and matrix spec."""
    tasks = "\n".join(f"  - {{task: {d}, recipe: paper, protocol: {protocol}, resolution: {resolution}}}"
                      for d in DATASETS)
    backbones = "\n".join(f"  - {{name: {a}, checkpoint: {a}.pth, arch: {a}}}" for a in ARCHS)
    for arch in ARCHS:
        (tmp_path / f"{arch}.pth").write_bytes(b"x")
    datasets = "\n".join(f"  {d}: {{root: {tmp_path / d}}}" for d in DATASETS)
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(f"name: recipes\nbackbones:\n{backbones}\ndatasets:\n{datasets}\ntasks:\n{tasks}\n")
    return plan_matrix(load_spec(matrix, work_root=tmp_path / "runs")).cells


def _resolved(cell) -> Config:
    """The cell's config with the planner's overrides merged, as tools/train.py sees it."""
    cfg = Config.fromfile(cell.config)
    cfg.merge_from_dict(cell.cfg_options)
    return cfg


def _train_transforms(cfg: Config) -> list:
    step = TRANSFORMS.build(cfg.train_dataloader.dataset.pipeline[1])
    inner = getattr(step, "transform", None)
    return [type(t).__name__ for t in getattr(inner, "transforms", [])] or [type(step).__name__]


def test_linear_cells_run_the_linear_probe_recipe(tmp_path: Path) -> None:
    cells = _cells(tmp_path, "linear")
    assert len(cells) == len(DATASETS) * len(ARCHS)
    for cell in cells:
        path = Path(cell.config)
        assert path.name == f"{ARCHS[cell.arch]}_linear-amp-90e_{cell.task}-224.py" and path.is_file()
        cfg = _resolved(cell)
        assert cfg.model.backbone.arch == cell.arch and cfg.model.num_classes == DATASETS[cell.task]
        # the planner's checkpoint and data-root keys land in the config
        assert cfg.model.pretrained == str(tmp_path / f"{cell.arch}.pth")
        assert {cfg[loader].dataset.data_root for loader in LOADERS} == {str(tmp_path / cell.task)}
        assert Protocol.parse(cfg.model.protocol) == Protocol("linear")
        # MAE Table 10 / main_linprobe.py: LARS, blr 0.1 at 16384, wd 0, no regularisation
        optimizer = cfg.optim_wrapper.optimizer
        assert optimizer.type == "MAETransferLars" and issubclass(OPTIMIZERS.get("MAETransferLars"), LARS)
        assert optimizer.lr == pytest.approx(0.1 * 16384 / 256)
        assert (optimizer.weight_decay, optimizer.momentum) == (0.0, 0.9)
        assert optimizer.trust_coefficient == 0.001
        assert "constructor" not in cfg.optim_wrapper  # no layer decay
        assert cfg.train_dataloader.batch_size * cell.processes * cfg.optim_wrapper.accumulative_counts == 16384
        assert cfg.train_dataloader.batch_size <= 512  # MAE LINPROBE: 512 per GPU
        assert cfg.model.mixup is None and cfg.model.label_smoothing == 0.0
        assert cfg.model.backbone.drop_path_rate == 0.0
        warmup, cosine = cfg.param_scheduler
        assert (warmup.end, cosine.begin, cosine.end, cosine.eta_min) == (10, 10, 90, 0.0)
        assert cfg.train_cfg.max_epochs == 90
        assert _train_transforms(cfg) == ["MAETransferLinearProbeTransform"]


def test_linear_cell_model_has_the_bn_head_and_trains_only_the_head(tmp_path: Path) -> None:
    cell = next(c for c in _cells(tmp_path, "linear") if c.task == "inat2019" and c.arch == "vit_large_patch16")
    cfg = _resolved(cell)
    model = MODELS.build({**cfg.model, "pretrained": None, "backbone": {**cfg.model.backbone, "depth": 2}})
    assert isinstance(model.head_norm, torch.nn.BatchNorm1d) and not model.head_norm.affine
    assert model.head_norm.eps == 1e-6 and model.protocol.pool == "cls"
    assert not isinstance(model.backbone.norm, torch.nn.Identity)  # cls token after the final norm
    assert model.mixup is None and isinstance(model.criterion, torch.nn.CrossEntropyLoss)
    assert model.trainable_names == ["head.weight", "head.bias"]
    # AmpOptimWrapper asserts a GPU at build; the optimizer is the same without it
    wrapper = build_optim_wrapper(model, {"type": "OptimWrapper", "optimizer": cfg.optim_wrapper.optimizer})
    assert isinstance(wrapper.optimizer, LARS)


@pytest.mark.parametrize("protocol", ["partial-1", "partial-mlp"])
def test_partial_cells_stay_on_the_finetuning_recipe(tmp_path: Path, protocol: str) -> None:
    for cell in _cells(tmp_path, protocol):
        assert "_ft-amp-" in Path(cell.config).name
        cfg = _resolved(cell)
        expected = Protocol("partial", 1) if protocol == "partial-1" else Protocol("partial-mlp")
        assert Protocol.parse(cfg.model.protocol) == expected
        assert cfg.optim_wrapper.optimizer.type == "AdamW" and cfg.model.mixup is not None
        assert cfg.optim_wrapper.constructor == "MAETransferLayerDecayOptimWrapperConstructor"


def test_448_cells_evaluate_resize_448_then_centre_crop_448(tmp_path: Path) -> None:
    cells = [c for c in _cells(tmp_path, "finetune", resolution=448) if c.arch == "vit_huge_patch14"]
    assert len(cells) == len(DATASETS)
    image = Image.new("RGB", (640, 512), (120, 60, 30))  # landscape: short side 512
    for cell in cells:
        cfg = _resolved(cell)
        step = TRANSFORMS.build(cfg.test_dataloader.dataset.pipeline[1])
        assert isinstance(step, TimmTransform)
        resize, crop = step.transform.transforms[:2]
        assert isinstance(resize, tv.Resize) and isinstance(crop, tv.CenterCrop)
        assert resize.size in (448, [448], (448,)) and tuple(crop.size) == (448, 448)
        assert resize.interpolation == tv.InterpolationMode.BICUBIC
        resized = resize(image)
        assert resized.size == (560, 448)  # short side 512 -> 448, aspect kept (640 x 448 / 512)
        assert crop(resized).size == (448, 448)
        assert step({"img": image})["img"].shape == (3, 448, 448)


def test_224_evaluation_keeps_resize_256_centre_crop_224(tmp_path: Path) -> None:
    cell = next(c for c in _cells(tmp_path, "finetune") if c.arch == "vit_base_patch16")
    step = TRANSFORMS.build(_resolved(cell).test_dataloader.dataset.pipeline[1])
    resize, crop = step.transform.transforms[:2]
    assert resize.size in (256, [256], (256,)) and tuple(crop.size) == (224, 224)


def test_linear_probe_transform_crops_inside_the_image_and_flips_only() -> None:
    torch.manual_seed(0)
    transform = LinearProbeTransform(input_size=32)
    for width, height in ((50, 40), (40, 90), (33, 33)):
        for _ in range(200):
            top, left, crop_h, crop_w = transform.crop_box(width, height)
            assert 0 <= top and top + crop_h <= height and 0 <= left and left + crop_w <= width
            assert crop_h >= 1 and crop_w >= 1
    image = Image.new("RGB", (50, 40), (255, 0, 0))
    tensor = transform({"img": image})["img"]
    assert tensor.shape == (3, 32, 32)
    # a constant image stays constant: no colour jitter, erasing or other pixel noise
    assert torch.allclose(tensor, tensor[:, :1, :1].expand_as(tensor), atol=1e-5)


def test_linear_probe_crop_area_follows_the_scale_range() -> None:
    torch.manual_seed(0)
    transform = LinearProbeTransform(input_size=32, scale=(0.5, 0.5), ratio=(1.0, 1.0))
    top, left, crop_h, crop_w = transform.crop_box(100, 100)
    assert (crop_h, crop_w) == (71, 71)  # sqrt(0.5 x 100 x 100) = 70.7 -> 71, single draw


@pytest.mark.slow
def test_linear_probe_config_trains_through_the_runner(tmp_path: Path, one_thread: None) -> None:
    root = make_dataset("inat2017", tmp_path / "data", seed=1)  # 4 classes, 64 train / 32 val images
    cfg = Config.fromfile(str(REPO / "configs/inat/vit-base-p16_linear-amp-90e_inat2017-224.py"))
    # the leaf as shipped, scaled to CPU: a 2-block ViT-T, 4 classes, batch 8, 2 epochs, fp32
    # (AmpOptimWrapper needs a GPU); pipeline, head, LARS and schedule types are the recipe's
    cfg.model.backbone = dict(arch="vit_tiny_patch16", img_size=224, depth=2, drop_path_rate=0.0)
    cfg.model.num_classes = 4
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        cfg[loader].dataset.data_root, cfg[loader].dataset.num_classes = str(root), 4
        cfg[loader].num_workers, cfg[loader].persistent_workers = 0, False
    cfg.train_dataloader.batch_size, cfg.val_dataloader.batch_size = 8, 16
    cfg.optim_wrapper = dict(type="OptimWrapper", optimizer=cfg.optim_wrapper.optimizer)
    cfg.param_scheduler[0].end, cfg.param_scheduler[1].begin, cfg.param_scheduler[1].end = 1, 1, 2
    cfg.train_cfg.max_epochs, cfg.train_cfg.val_interval = 2, 2
    cfg.default_hooks.checkpoint.interval = 10
    cfg.work_dir, cfg.experiment_name = str(tmp_path / "work"), f"linear_{tmp_path.name}"
    runner = build_runner(cfg)
    backbone_before = {k: v.clone() for k, v in runner.model.backbone.state_dict().items()}
    head_before = runner.model.head.weight.detach().clone()
    runner.train()
    optimizer = runner.optim_wrapper.optimizer
    assert isinstance(optimizer, LARS) and optimizer.param_groups[0]["trust_coefficient"] == 0.001
    assert set(optimizer.state) == {runner.model.head.weight, runner.model.head.bias}  # momentum buffers
    assert all(torch.equal(v, runner.model.backbone.state_dict()[k]) for k, v in backbone_before.items())
    assert not torch.equal(head_before, runner.model.head.weight) and torch.isfinite(runner.model.head.weight).all()
    assert runner.iter == 16  # 64 images / batch 8 x 2 epochs
    assert runner.message_hub.get_scalar("val/accuracy/top1") is not None
