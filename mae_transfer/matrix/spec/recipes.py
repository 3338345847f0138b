"""Each recipe's total batch, learning rate, per-GPU memory limit and schedule, from its source.

One table, ``RECIPES``, answers for every (task family, recipe, protocol, resolution, arch):

- ``batch``: images per optimizer step the source trains with;
- ``lr``: the optimizer lr at that batch; at another batch ``b`` the lr follows the linear
  scaling rule (Goyal et al. 2017), ``lr x b / batch``. MAE's ``blr x batch / 256`` is the same
  rule written against a base batch of 256;
- ``max_per_gpu``: the largest per-GPU batch the source ran (its memory-proven batch), so the
  planner can choose per-GPU batch x gradient accumulation;
- ``iters`` (iteration-based loops, at ``batch``) or ``epochs`` (epoch-based loops): the length,
  for the GPU-hour estimate.

``tests/matrix/test_recipes.py`` checks every shipped config against this table (lr, length,
per-GPU batch), so a config and its recipe cannot drift apart silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from mae_transfer.matrix.spec.tasks import RESOLUTION_COST, TASKS, THROUGHPUT
from mae_transfer.models.archs import ARCHS

# Training-set sizes: COCO train2017, ADE20K training, iNat 2017/2018/2019 train, Places205 and
# Places365-Standard train lists (REFERENCES.md "Datasets"; iNat/Places from their file lists),
# ImageNet-1k train (ILSVRC-2012: 1,281,167 images).
TRAIN_IMAGES: dict[str, int] = {
    "coco-maskrcnn": 118287,
    "ade20k-upernet": 20210,
    "inat2017": 579184,
    "inat2018": 437513,
    "inat2019": 265213,
    "places205": 2448873,
    "places365": 1803460,
    "imagenet": 1281167,
    "digits": 100,  # mae_transfer/data/digits.py: 10 training images per class (the smoke matrix's)
}


@dataclass(frozen=True)
class Recipe:
    """The batch and lr a recipe trains at, and what limits its per-GPU batch.

    Attributes:
        batch: total images per optimizer step (all processes x per-GPU batch x accumulation).
        lr: optimizer lr at ``batch`` (``optim_wrapper.optimizer.lr`` of the config).
        max_per_gpu: the largest per-GPU batch the source trained with.
        loop: ``iter`` (IterBasedTrainLoop: schedules count iterations) or ``epoch``.
        length: iterations at ``batch`` (``loop == 'iter'``) or epochs (``loop == 'epoch'``).
        source: where batch, lr and length come from.
        per_gpu_source: where ``max_per_gpu`` comes from.
        per_process: ``batch`` is per process and the total is ``batch x processes``, with no
            accumulation and no single lr (the frozen probes: each grid lr is scaled by the total
            inside the run, ``lr x batch x world / 256``).
    """

    batch: int
    lr: float | None
    max_per_gpu: int
    loop: str
    length: int
    source: str
    per_gpu_source: str
    per_process: bool = False

    def lr_at(self, batch: int) -> float | None:
        """The lr at another total batch by the linear scaling rule: ``lr x batch / self.batch``."""
        return None if self.lr is None else self.lr * batch / self.batch

    def images(self, task: str, length: int | None = None) -> int:
        """Training images seen over the schedule (``length`` replaces the recipe's)."""
        length = self.length if length is None else length
        if self.loop == "iter":
            return length * self.batch
        return length * TRAIN_IMAGES[task]

    @property
    def length_key(self) -> str:
        """The config key of the schedule's length."""
        return "train_cfg.max_iters" if self.loop == "iter" else "train_cfg.max_epochs"


class RecipeError(KeyError):
    """No recipe is declared for a cell's coordinates."""


# --- COCO, Mask R-CNN -------------------------------------------------------------------------
# ViTDet (Li et al. 2022; detectron2 projects/ViTDet/configs/COCO/mask_rcnn_vitdet_b_100ep.py):
# batch 64 (common/coco_loader_lsj.py total_batch_size = 64), AdamW lr 1e-4 (common/optim.py),
# "100 ep = 184375 iters * 64 images/iter / 118000 images/ep"; ViT-H 75 ep (mask_rcnn_vitdet_h_75ep.py):
# 184375 * 3 // 4 = 138281 iters.
# Per GPU: ViT-B 4 (mmdet projects/ViTDet README: "total batch size of 64 (16 GPU with 4 images
# per GPU)"); ViT-L and ViT-H 1 (detectron2 projects/ViTDet README: 64 A100 GPUs at batch 64, train
# memory 20.9 GB (L) and 31.5 GB (H) per GPU at one image; no source ran more per GPU).
_VITDET = "ViTDet (detectron2 projects/ViTDet mask_rcnn_vitdet_{b,l}_100ep / _h_75ep): batch 64, lr 1e-4"
_VITDET_B_PER_GPU = "mmdet projects/ViTDet README: 16 GPUs x 4 images"
_VITDET_LH_PER_GPU = "detectron2 projects/ViTDet README: 64 A100 x 1 image (20.9 GB ViT-L, 31.5 GB ViT-H)"
# The MAE paper's A.3 recipe is Li et al. 2021 (arXiv 2111.11429): batch 64 (Sec. 2.3), lr 8e-5
# (Sec. 4.2), up to 100 epochs (kept at 100 = 184375 iters at 64). Li et al. spread the 64 images
# over 32 or 64 GPUs (Sec. 2.3: 2 or 1 per GPU). Declared deviation: the per-GPU cap here is
# ViTDet's (4 for ViT-B, 1 for ViT-L/H; same 1024 input, window 14 + 4 global blocks), so a cell
# on fewer than 32 GPUs may run ViT-B at 4 per GPU where Li ran at most 2.
_LI = "Li et al. 2021 (arXiv 2111.11429): batch 64 (Sec. 2.3), lr 8e-5 (Sec. 4.2), 100 epochs"
_LI_PER_GPU = ("Li et al. Sec. 2.3: 64 images on 32 or 64 GPUs (2 or 1 per GPU); deviation: ViTDet's cap "
               "(4 per GPU ViT-B, 1 ViT-L/H)")
# Reduced preset (ours, configs/coco/vitdet_mask-rcnn_vit-b_lsj-1024_8xb4-25e_amp.py): 8 GPUs x 4
# = batch 32, lr 1e-4 x 32 / 64 = 5e-5, 25 epochs = 92412 iters at 32.
_REDUCED_COCO = "reduced ViTDet preset (configs/coco/*_8xb4-25e_amp.py): batch 32, lr 5e-5, 25 epochs"

# --- ADE20K, UperNet --------------------------------------------------------------------------
# MAE A.4 / MMSegmentation 1.2.2 mae-base_upernet_8xb2-amp-160k: batch 16 = 8 GPUs x 2, AdamW
# lr 1e-4, 160k iters. Per GPU 2: MMSeg 8xb2 (ViT-B); BEiT upernet_beit_large_24_512_slide_160k
# ("trained on 8 GPUs with 2 images per GPU", ViT-L). Reduced preset: 40k iters.
_ADE = "MAE A.4 / MMSeg mae-base_upernet_8xb2-amp-160k: batch 16, lr 1e-4, 160k iters"
_ADE_PER_GPU = "MMSeg mae-base_upernet_8xb2 (ViT-B), BEiT upernet_beit_large_24_512 8 GPUs x 2 (ViT-L)"

# --- Classification ---------------------------------------------------------------------------
# Fine-tuning (official FINETUNE.md, tuned for the released checkpoints): batch 1024 = 32 per GPU
# x 4 nodes x 8 GPUs (B, L) or 16 per GPU x 8 nodes x 8 GPUs (H); lr = blr x 1024 / 256 with
# blr 5e-4 (B: 2e-3) or 1e-3 (L, H: 4e-3); 100 epochs (B), 50 (L, H). The per-dataset lr/epoch
# adjustments for iNat/Places are unpublished (MAE A.5). Partial fine-tuning follows the same
# setting except the epoch count (MAE A.1 "Partial fine-tuning"), so it shares this batch and lr.
# 448 (ViT-H, Table 6): no published per-GPU batch; ours is 8 with activation checkpointing
# (configs/inat/vit-huge-p14_ft-amp-50e_*-448.py: 4x the tokens of 224).
_FINETUNE = "MAE FINETUNE.md: batch 1024, lr = blr x 1024 / 256 (blr 5e-4 B, 1e-3 L/H), 100 ep B / 50 ep L, H"
_FINETUNE_PER_GPU = "MAE FINETUNE.md: 32 per GPU (B, L), 16 per GPU (H) at 224"
_FINETUNE_448_PER_GPU = "unpublished; ours: 8 per GPU with activation checkpointing (configs/*/vit-huge-p14_*-448.py)"
# Linear probing (MAE Table 10; FINETUNE.md "Linear Probing"): batch 16384 = 512 per GPU x 4 nodes
# x 8 GPUs, LARS lr = blr 0.1 x 16384 / 256 = 6.4, 90 epochs.
_LINEAR = "MAE Table 10 / FINETUNE.md linear probing: batch 16384, lr = 0.1 x 16384 / 256 = 6.4, 90 epochs"
_LINEAR_PER_GPU = "MAE FINETUNE.md linear probing: 512 per GPU"
# ImageNet partial fine-tuning (MAE A.1 "Partial fine-tuning"): the Table 9 setting (batch 1024,
# blr 1e-3: lr 4e-3 for ViT-L) except the epochs, chosen from {50, 100, 200} per number of tuned
# blocks; the choices are unpublished, ours is 200 (configs/imagenet/vit-large-p16_partial-*-200e).
_PARTIAL_IN1K = "MAE A.1 partial fine-tuning: Table 9 batch 1024, blr 1e-3 (lr 4e-3); epochs unpublished, ours 200"
_SMOKE = "our CPU smoke config (configs/smoke/*.py; one process): not a paper recipe"
# Frozen-feature probes (configs/_base_/classification/frozen_probes.py): 128 images per GPU (DINOv2
# eval/linear.py --batch-size 128, CAPI eval_classification.py batch_size=128), the total being
# 128 x GPUs; 10 epochs for the trained heads (DINOv2 epochs=10 x epoch_length=1250 at 128 x 8 = 10
# ImageNet epochs; CAPI n_iters=12500 at 128 x 8), one extraction pass for k-NN.
_PROBES = "DINOv2 eval/linear.py, CAPI eval_classification.py: 128 per GPU (lrs x 128 x GPUs / 256), 10 epochs"
_PROBE_PROTOCOLS = ("knn", "linear-sweep", "attentive")


def _per_arch(b: Recipe, l: Recipe | None = None, h: Recipe | None = None) -> dict[str, Recipe]:
    """A recipe per arch short name; ViT-T/S have no published recipe and take ViT-B's values."""
    return {"vit-t": b, "vit-s": b, "vit-b": b, "vit-l": l or b, "vit-h": h or l or b}


def _coco(recipe: str) -> dict[str, Recipe]:
    if recipe == "smoke":
        return _per_arch(Recipe(4, 2e-3, 4, "iter", 200, _SMOKE, _SMOKE))
    if recipe == "reduced":
        return _per_arch(Recipe(32, 5e-5, 4, "iter", 92412, _REDUCED_COCO, _VITDET_B_PER_GPU),
                         Recipe(32, 5e-5, 1, "iter", 92412, _REDUCED_COCO, _VITDET_LH_PER_GPU))
    lr, source, per_gpu_b, per_gpu_lh = ((8e-5, _LI, _LI_PER_GPU, _LI_PER_GPU) if recipe == "paper"
                                         else (1e-4, _VITDET, _VITDET_B_PER_GPU, _VITDET_LH_PER_GPU))
    return _per_arch(Recipe(64, lr, 4, "iter", 184375, source, per_gpu_b),
                     Recipe(64, lr, 1, "iter", 184375, source, per_gpu_lh),
                     Recipe(64, lr, 1, "iter", 184375 if recipe == "paper" else 138281, source, per_gpu_lh))


def _ade20k(recipe: str) -> dict[str, Recipe]:
    if recipe == "smoke":
        return _per_arch(Recipe(4, 1e-3, 4, "iter", 80, _SMOKE, _SMOKE))
    return _per_arch(Recipe(16, 1e-4, 2, "iter", 160000 if recipe == "paper" else 40000, _ADE, _ADE_PER_GPU))


def _classification(task: str, recipe: str, protocol: str | None, resolution: int) -> dict[str, Recipe]:
    if protocol in _PROBE_PROTOCOLS:
        if recipe == "smoke":  # configs/smoke/digits_probes.py: 32 per process, 60 epochs of the heads
            return _per_arch(Recipe(32, None, 32, "epoch", 1 if protocol == "knn" else 60, _SMOKE, _SMOKE, True))
        return _per_arch(Recipe(128, None, 128, "epoch", 1 if protocol == "knn" else 10, _PROBES, _PROBES, True))
    if recipe == "smoke":
        return _per_arch(Recipe(8, 1e-3, 8, "epoch", 4, _SMOKE, _SMOKE))
    if protocol == "linear":
        return _per_arch(Recipe(16384, 6.4, 512, "epoch", 90, _LINEAR, _LINEAR_PER_GPU))
    if task == "imagenet" and protocol in ("partial-1", "partial-mlp"):
        # only ViT-L has these configs (tasks.py); other archs run the fine-tuning config
        return {**_classification(task, recipe, "finetune", resolution),
                "vit-l": Recipe(1024, 4e-3, 32, "epoch", 200, _PARTIAL_IN1K, _FINETUNE_PER_GPU)}
    # the reduced preset (no shipped config; point `config:` at one) runs 30 epochs for every arch
    base_epochs, large_epochs = (100, 50) if recipe == "paper" else (30, 30)
    if resolution > 224:
        high = Recipe(1024, 4e-3, 8, "epoch", large_epochs, _FINETUNE, _FINETUNE_448_PER_GPU)
        return _per_arch(Recipe(1024, 2e-3, 8, "epoch", base_epochs, _FINETUNE, _FINETUNE_448_PER_GPU), high, high)
    return _per_arch(Recipe(1024, 2e-3, 32, "epoch", base_epochs, _FINETUNE, _FINETUNE_PER_GPU),
                     Recipe(1024, 4e-3, 32, "epoch", large_epochs, _FINETUNE, _FINETUNE_PER_GPU),
                     Recipe(1024, 4e-3, 16, "epoch", large_epochs, _FINETUNE, _FINETUNE_PER_GPU))


def recipe_for(task: str, recipe: str, arch: str, protocol: str | None = None, resolution: int = 224) -> Recipe:
    """The declared recipe of one cell's coordinates.

    Raises:
        RecipeError: the task or arch is unknown.
    """
    if task not in TASKS or arch not in ARCHS:
        raise RecipeError(f"no recipe for task {task!r}, arch {arch!r}")
    family = TASKS[task].family
    if family == "coco":
        table = _coco(recipe)
    elif family == "ade20k":
        table = _ade20k(recipe)
    else:
        table = _classification(task, recipe, protocol, resolution)
    if ARCHS[arch].short not in table:  # e.g. DINOv2's ViT-g: no published recipe of these tasks
        raise RecipeError(f"no {recipe} recipe of {task} for {arch} ({ARCHS[arch].label}); recipes exist for "
                          f"{', '.join(sorted(table))}")
    return table[ARCHS[arch].short]


def gpu_hours(task: str, arch: str, resolution: int, recipe: Recipe, length: int | None = None) -> float:
    """Estimated GPU-hours of one cell: its training images over the per-GPU throughput.

    ``length`` is a schedule length the matrix overrides (iterations at the recipe batch, or
    epochs). Gradient accumulation and another batch keep the images seen (the schedule is
    rescaled to the same epochs), so they do not change the estimate.
    """
    family = TASKS[task].family
    rate = THROUGHPUT[(family, ARCHS[arch].short)] / RESOLUTION_COST.get(resolution, (resolution / 224) ** 2)
    return recipe.images(task, length) / rate / 3600.0
