"""The one table that maps (task, recipe, arch, protocol, resolution) to a config and its keys.

Every config defines top-level ``pretrained`` and ``data_root`` variables; mmengine resolves
them at parse time, so a cell sets the full key paths that use them through ``--cfg-options``.
``TASKS`` lists those paths per task; ``tests/matrix/test_tasks.py`` checks them against every
config that exists, so a config and this table cannot drift apart silently.

Throughputs give the GPU-hour estimate of ``plan`` (``recipes.gpu_hours``: images seen over
the recipe's schedule divided by images per second per GPU). They are rough A100 (AMP) figures
measured by the reference implementations (ViTDet training logs, MMSeg logs, MAE fine-tuning
logs); estimates for budgeting, not benchmarks. Each recipe's batch, lr and schedule live in
``mae_transfer/matrix/spec/recipes.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from mae_transfer.classification.protocols import Protocol
from mae_transfer.models.archs import ARCHS

@dataclass(frozen=True)
class TaskProfile:
    """What the matrix needs to know about one task.

    Attributes:
        family: ``coco``, ``ade20k`` or ``classification``.
        configs: recipe -> config path template (``{arch}`` = ``ViTArch.short``: vit-b etc.,
            ``{folder}``, ``{resolution}``, ``{eval}``), or a mapping short arch -> template; relative to
            the repository root. A ``recipe:protocol`` key (``paper:linear``) replaces the
            recipe's template for cells of that protocol.
        checkpoint_keys: config key paths that receive the checkpoint path (``format_keys``,
            each with ``_format`` appended, receive a forced ``backbones[].format``).
        data_keys: (key path, suffix): the key receives ``data_root + suffix``.
        recipe_data_keys: recipe -> data keys, for recipes whose configs wrap datasets differently.
        test_configs: eval mode -> test-only config template evaluated on the trained checkpoint
            with ``tools/test.py`` (ADE20K ms+flip); the training config stays the recipe's.
        metrics: leaderboard metric name -> candidate keys in ``metrics.json`` (first found wins).
    """

    family: str
    configs: dict[str, str | dict[str, str]]
    checkpoint_keys: tuple[str, ...]
    data_keys: tuple[tuple[str, str], ...]
    metrics: dict[str, tuple[str, ...]]
    recipe_data_keys: dict[str, tuple[tuple[str, str], ...]] | None = None
    test_configs: dict[str, str] | None = None

    @property
    def format_keys(self) -> tuple[str, ...]:
        """The keys that force the checkpoint's format (``pretrained_format`` of every backbone
        class and of ``MAEClassifier``), next to each checkpoint key."""
        return tuple(f"{key}_format" for key in self.checkpoint_keys)

    def data_keys_for(self, recipe: str) -> tuple[tuple[str, str], ...]:
        """The data-root key paths of a recipe's configs."""
        return (self.recipe_data_keys or {}).get(recipe, self.data_keys)


# (short, config-name spelling, fine-tuning epochs) of the archs with shipped classification configs.
_FINETUNE_ARCHS = tuple((ARCHS[name].short, ARCHS[name].config_name, epochs) for name, epochs in (
    ("vit_base_patch16", 100), ("vit_large_patch16", 50), ("vit_huge_patch14", 50)))
_CLASSIFICATION_DATA_KEYS = (
    ("train_dataloader.dataset.data_root", ""),
    ("val_dataloader.dataset.data_root", ""),
    ("test_dataloader.dataset.data_root", ""),
)
_CLASSIFICATION_METRICS = {"top1": ("accuracy/top1", "top1", "acc/top1"), "top5": ("accuracy/top5", "top5", "acc/top5")}


def _classification(dataset: str) -> TaskProfile:
    # Table 9 / FINETUNE.md lengths: 100 epochs (B), 50 (L/H) at batch 1024; the per-dataset
    # adjustments of MAE A.5 are not published.
    archs = _FINETUNE_ARCHS
    return TaskProfile(
        family="classification",
        # One fine-tuning config per dataset x arch x resolution; partial fine-tuning overrides
        # model.protocol on it (protocol_options; MAE A.1: partial fine-tuning follows the
        # fine-tuning setting). The linear probe has its own recipe (MAE Table 10: LARS, BN head,
        # no mixup/RandAugment), so `paper:linear` names its configs. No reduced preset is
        # shipped: point `config:` at one.
        configs={
            "paper": {arch: f"configs/{{folder}}/{name}_ft-amp-{epochs}e_{dataset}-{{resolution}}.py"
                      for arch, name, epochs in archs},
            "paper:linear": {arch: f"configs/{{folder}}/{name}_linear-amp-90e_{dataset}-{{resolution}}.py"
                             for arch, name, _ in archs},
            "reduced": f"configs/{{folder}}/reduced_{dataset}_{{arch}}-{{resolution}}.py",
            "smoke": f"configs/smoke/{'inat' if dataset.startswith('inat') else 'places'}_finetune.py",
        },
        checkpoint_keys=("model.pretrained",),
        data_keys=_CLASSIFICATION_DATA_KEYS,
        metrics=_CLASSIFICATION_METRICS,
    )


def _imagenet() -> TaskProfile:
    # ImageNet-1k (configs/imagenet): fine-tuning (MAE Table 3 / FINETUNE.md; 224 for B/L/H and 448
    # for H), the linear probe (Table 10 recipe, Table 12 numbers) and ViT-L partial fine-tuning of
    # the last block or of its MLP (Fig. 9), each with its own config. Other partial-K cells run on
    # the fine-tuning config with model.protocol overridden (protocol_options), as for Table 6.
    archs = _FINETUNE_ARCHS
    return TaskProfile(
        family="classification",
        configs={
            "paper": {arch: f"configs/imagenet/{name}_ft-amp-{epochs}e_in1k-{{resolution}}.py" for arch, name, epochs in archs},
            "paper:linear": {arch: f"configs/imagenet/{name}_linear-amp-90e_in1k-{{resolution}}.py" for arch, name, _ in archs},
            "paper:partial-1": {"vit-l": "configs/imagenet/vit-large-p16_partial-1blk-amp-200e_in1k-{resolution}.py"},
            "paper:partial-mlp": {"vit-l": "configs/imagenet/vit-large-p16_partial-mlp-amp-200e_in1k-{resolution}.py"},
        },
        checkpoint_keys=("model.pretrained",),
        data_keys=_CLASSIFICATION_DATA_KEYS,
        metrics=_CLASSIFICATION_METRICS,
    )


TASKS: dict[str, TaskProfile] = {
    "coco-maskrcnn": TaskProfile(
        family="coco",
        configs={
            "paper": "configs/coco/mae-fpn_mask-rcnn_{arch}_lsj-1024_100e_amp.py",
            "vitdet": {"vit-b": "configs/coco/vitdet_mask-rcnn_vit-b_lsj-1024_100e_amp.py",
                       "vit-l": "configs/coco/vitdet_mask-rcnn_vit-l_lsj-1024_100e_amp.py",
                       "vit-h": "configs/coco/vitdet_mask-rcnn_vit-h_lsj-1024_75e_amp.py"},
            "reduced": "configs/coco/vitdet_mask-rcnn_{arch}_lsj-1024_8xb4-25e_amp.py",
            "smoke": "configs/smoke/coco_maskrcnn.py",
        },
        checkpoint_keys=("model.backbone.pretrained",),
        data_keys=(
            ("train_dataloader.dataset.dataset.data_root", "/"),
            ("val_dataloader.dataset.data_root", "/"),
            ("test_dataloader.dataset.data_root", "/"),
            ("val_evaluator.ann_file", "/annotations/instances_val2017.json"),
            ("test_evaluator.ann_file", "/annotations/instances_val2017.json"),
        ),
        recipe_data_keys={"smoke": (
            ("train_dataloader.dataset.data_root", "/"),
            ("val_dataloader.dataset.data_root", "/"),
            ("test_dataloader.dataset.data_root", "/"),
            ("val_evaluator.ann_file", "/annotations/instances_val2017.json"),
            ("test_evaluator.ann_file", "/annotations/instances_val2017.json"),
        )},
        metrics={"AP_box": ("coco/bbox_mAP", "bbox_mAP"), "AP_mask": ("coco/segm_mAP", "segm_mAP")},
    ),
    "ade20k-upernet": TaskProfile(
        family="ade20k",
        configs={
            "paper": "configs/ade20k/upernet_mae-{arch}_8xb2-amp-160k_ade20k-512x512.py",
            "reduced": "configs/ade20k/upernet_mae-{arch}_8xb2-amp-40k_ade20k-512x512.py",
            "smoke": "configs/smoke/ade20k_upernet.py",
        },
        checkpoint_keys=("model.backbone.pretrained",),
        data_keys=(
            ("train_dataloader.dataset.data_root", ""),
            ("val_dataloader.dataset.data_root", ""),
            ("test_dataloader.dataset.data_root", ""),
        ),
        metrics={"mIoU": ("mIoU",), "mAcc": ("mAcc",), "aAcc": ("aAcc",)},
        test_configs={"ms+flip": "configs/ade20k/upernet_mae-{arch}_8xb2-amp-160k_ade20k-512x512-ms.py"},
    ),
    "inat2017": _classification("inat2017"),
    "inat2018": _classification("inat2018"),
    "inat2019": _classification("inat2019"),
    "places205": _classification("places205"),
    "places365": _classification("places365"),
    "imagenet": _imagenet(),
}

# images / second / GPU in training, by task family and arch (A100, AMP; CPU-scale for tiny).
THROUGHPUT: dict[tuple[str, str], float] = {
    ("coco", "vit-t"): 8.0, ("coco", "vit-s"): 6.0, ("coco", "vit-b"): 3.2, ("coco", "vit-l"): 2.0, ("coco", "vit-h"): 1.2,
    ("ade20k", "vit-t"): 16.0, ("ade20k", "vit-s"): 11.0, ("ade20k", "vit-b"): 5.7, ("ade20k", "vit-l"): 2.6, ("ade20k", "vit-h"): 1.4,
    ("classification", "vit-t"): 2400.0, ("classification", "vit-s"): 1200.0, ("classification", "vit-b"): 420.0,
    ("classification", "vit-l"): 135.0, ("classification", "vit-h"): 60.0,
}
# Cost of a 448 input relative to 224 for classification: 4x tokens, attention quadratic.
RESOLUTION_COST = {224: 1.0, 448: 5.0}


def config_path(task: str, recipe: str, arch: str, protocol: str | None, resolution: int, eval_mode: str) -> str:
    """The config file (relative to the repository root) of one cell."""
    profile = TASKS[task]
    template = profile.configs.get(f"{recipe}:{protocol}", profile.configs[recipe])
    if isinstance(template, dict) and ARCHS[arch].short not in template:
        template = profile.configs[recipe]  # e.g. ImageNet partial-1 has a ViT-L config only
    if isinstance(template, dict):
        template = template.get(ARCHS[arch].short, f"configs/<no {recipe} config for {arch}>.py")
    return template.format(
        arch=ARCHS[arch].short,
        folder="inat" if task.startswith("inat") else "imagenet" if task == "imagenet" else "places",
        resolution=resolution,
        eval="-ms" if eval_mode == "ms+flip" else "",
    )


def protocol_options(protocol: str | None) -> dict[str, object]:
    """``--cfg-options`` that select a classification protocol (its matrix spelling, which
    ``model.protocol`` takes as is: :mod:`mae_transfer.classification.protocols`).

    Partial fine-tuning runs on the fine-tuning configs, so its options select the protocol
    there. The linear probe's own configs (``paper:linear``) already set ``model.protocol``;
    the option is repeated so that a cell with its own ``config:`` still probes linearly.
    """
    if protocol in (None, "finetune"):
        return {}
    return {"model.protocol": Protocol.from_spelling(protocol).spelling}


def test_config_path(task: str, arch: str, eval_mode: str) -> str | None:
    """The test-only config of an evaluation mode (None: the training run's own validation)."""
    template = (TASKS[task].test_configs or {}).get(eval_mode)
    return None if template is None else template.format(arch=ARCHS[arch].short)
