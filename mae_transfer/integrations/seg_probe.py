"""ADE20K linear segmentation probe in MMSegmentation: a frozen ViT, BN + 1x1 conv heads, lr chosen on a train hold-out.

Configs reach it through ``custom_imports = dict(imports=["mae_transfer.integrations.seg_probe"])``.
Registered into mmseg's registries:

- ``MAETransferFrozenSegViT`` (``MODELS``): the ViT, frozen and always in eval mode, run without
  gradients; its one output is the last block's patch tokens after the final norm
  (``forward_last_blocks(x, 1)``, registers and cls excluded) as a (B, C, H/p, W/p) map. The
  checkpoint loads in ``init_weights`` with its ``LoadReport``, as the other backbones.
- ``MAETransferLinearSegHead`` (``MODELS``): ``num_heads`` heads, each a BatchNorm on the features
  and a 1x1 conv to the classes (DINOv2 ``eval/segmentation/models/decode_heads/linear_head.py``
  ``BNHead``: SyncBN, then ``conv_seg``); logits are upsampled bilinearly by mmseg's
  ``loss_by_feat`` / ``predict_by_feat``. Every head is trained on the same frozen forward; its
  own loss (``head{i}.loss_ce``) reaches only its parameters, and the config gives each head
  its own lr through ``paramwise_cfg.custom_keys`` (``decode_head.heads.{i}.``: ``lr_mult``).
  ``active`` (a buffer, saved in checkpoints) is the head ``predict`` uses.
- ``MAETransferHoldoutSplit`` (``DATASETS``): a dataset config split into ``fit`` (what the
  heads train on) and ``holdout`` by :func:`mae_transfer.probes.holdout.split_holdout` (a
  fixed-seed share of the images).
- ``MAETransferHoldoutSelectValLoop`` (``LOOPS``): scores every head on the hold-out (mmseg's
  ``IoUMetric`` per head, one frozen forward per batch), makes the best hold-out mIoU the active
  head, writes ``WORK_DIR/seg_probe.json`` (every head's lr multiplier and hold-out mIoU, the choice,
  the hold-out ids' digest), and only when training has ended evaluates the chosen head on
  val (``val_evaluator``). Earlier validations score the hold-out only; val is never read before
  the final selection. The heads are not refitted on the hold-out (CAPI does not refit either).
"""

from __future__ import annotations

import copy
import os
from typing import Any, Sequence

import torch
from mmcv.cnn import build_norm_layer
from mmengine.runner import ValLoop
from mmseg.evaluation import IoUMetric
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import DATASETS, LOOPS, MODELS
from torch import nn

import mae_transfer.integrations.engine  # noqa: F401  (resume fix, records hook)
from mae_transfer import records
from mae_transfer.integrations.backbone_common import PretrainedViTBackbone
from mae_transfer.models import build_vit
from mae_transfer.probes.holdout import split_holdout
from mae_transfer.probes.settings import HoldoutSettings

SEG_PROBE_NAME = "seg_probe.json"
HEAD_INIT_STD = 0.01  # mmseg BaseDecodeHead's init_cfg: Normal std 0.01 on conv_seg


@MODELS.register_module()
class MAETransferFrozenSegViT(PretrainedViTBackbone):
    """Frozen ViT -> ((B, C, H/p, W/p),): the last block's normed patch tokens.

    Args:
        arch: a ``mae_transfer.models.ARCHS`` name.
        img_size: the grid the pos_embed is stored for (resized at run time for other inputs).
        pretrained / init_cfg / pretrained_format: the checkpoint (see ``PretrainedViTBackbone``).
        **overrides: any other ``MAEViT`` keyword (``depth``, ...).
    """

    def __init__(self, arch: str = "vit_base_patch16", img_size: int | Sequence[int] = 512,
                 pretrained: str | None = None, init_cfg: Any = None, pretrained_format: str | None = None,
                 **overrides: Any) -> None:
        super().__init__(arch, pretrained, init_cfg, pretrained_format)
        self.vit = build_vit(arch, img_size=img_size, **overrides)
        self.vit.requires_grad_(False)
        self.vit.eval()

    def train(self, mode: bool = True) -> MAETransferFrozenSegViT:
        """The ViT stays in eval mode."""
        super().train(mode)
        self.vit.eval()
        return self

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        tokens = self.vit.forward_last_blocks(x, 1)[-1][:, self.vit.num_prefix_tokens:]
        height, width = x.shape[-2] // self.vit.patch_size, x.shape[-1] // self.vit.patch_size
        return (tokens.transpose(1, 2).reshape(x.shape[0], -1, height, width).contiguous(),)


@MODELS.register_module()
class MAETransferLinearSegHead(BaseDecodeHead):
    """``num_heads`` x (BN + 1x1 conv) on one feature map; ``active`` predicts.

    Args:
        num_heads: heads trained side by side (one per learning rate of the config's grid).
        **kwargs: ``BaseDecodeHead`` arguments (``in_channels``, ``channels`` = ``in_channels``,
            ``num_classes``, ``norm_cfg`` for the BN, ``loss_decode``, ``align_corners``).
    """

    def __init__(self, num_heads: int = 1, **kwargs: Any) -> None:
        kwargs.setdefault("dropout_ratio", 0.0)
        kwargs.setdefault("init_cfg", None)
        super().__init__(**kwargs)
        if num_heads < 1:
            raise ValueError(f"decode_head.num_heads: expected >= 1, got {num_heads}")
        if self.in_channels != self.channels:
            raise ValueError(f"decode_head: channels ({self.channels}) must equal in_channels ({self.in_channels})")
        del self.conv_seg  # each head has its own
        norm_cfg = self.norm_cfg or dict(type="BN")
        heads = []
        for _ in range(num_heads):
            conv = nn.Conv2d(self.channels, self.out_channels, kernel_size=1)
            nn.init.normal_(conv.weight, std=HEAD_INIT_STD)
            nn.init.zeros_(conv.bias)
            heads.append(nn.Sequential(build_norm_layer(norm_cfg, self.channels)[1], conv))
        self.heads = nn.ModuleList(heads)
        self.register_buffer("active_head", torch.tensor(0))  # checkpointed with the heads

    @property
    def active(self) -> int:
        """The head ``predict`` uses."""
        return int(self.active_head)

    @active.setter
    def active(self, index: int) -> None:
        self.active_head.fill_(index)

    def all_logits(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Every head's logits at feature resolution."""
        features = self._transform_inputs(inputs)
        return [head(features) for head in self.heads]

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """The active head's logits."""
        return self.heads[self.active](self._transform_inputs(inputs))

    def loss(self, inputs: Sequence[torch.Tensor], batch_data_samples, train_cfg) -> dict:
        """Each head's mmseg loss, prefixed ``head{i}.`` (summed by mmengine: independent gradients)."""
        losses = {}
        for index, logits in enumerate(self.all_logits(inputs)):
            for name, value in self.loss_by_feat(logits, batch_data_samples).items():
                losses[f"head{index}.{name}"] = value
        return losses


@DATASETS.register_module()
def MAETransferHoldoutSplit(dataset: dict, part: str, fraction: float = 0.1, seed: int = 0):  # noqa: N802
    """``dataset`` restricted to its ``fit`` or ``holdout`` part (a fixed-seed share of the images)."""
    if part not in ("fit", "holdout"):
        raise ValueError(f"MAETransferHoldoutSplit.part: {part!r}; expected 'fit' or 'holdout'")
    full = DATASETS.build(copy.deepcopy(dataset))
    root = full.data_root or ""
    ids = [os.path.relpath(full.get_data_info(i)["img_path"], root) for i in range(len(full))]
    split = split_holdout([0] * len(ids), ids, HoldoutSettings(fraction, seed))
    subset = DATASETS.build({**copy.deepcopy(dataset), "indices": list(split.fit if part == "fit" else split.holdout)})
    subset.holdout_summary = split.summary()
    return subset


@LOOPS.register_module()
class MAETransferHoldoutSelectValLoop(ValLoop):
    """Choose the head on the hold-out, then (after training) evaluate it on val; see the module docstring.

    Args:
        holdout_dataloader: the hold-out's dataloader config (``MAETransferHoldoutSplit`` with
            ``part="holdout"`` and the test pipeline).
        lr_multipliers: each head's ``lr_mult`` (recorded with its score).
        runner / dataloader / evaluator / fp16: as mmengine's ``ValLoop``.
    """

    def __init__(self, runner, dataloader, evaluator, holdout_dataloader: dict,
                 lr_multipliers: Sequence[float] = (), fp16: bool = False) -> None:
        super().__init__(runner, dataloader, evaluator, fp16)
        self.holdout_loader = runner.build_dataloader(holdout_dataloader, seed=runner.seed)
        self.lr_multipliers = list(lr_multipliers)

    def _model(self):
        model = self.runner.model
        return model.module if hasattr(model, "module") else model

    @torch.no_grad()
    def score_holdout(self) -> list[float]:
        """Each head's mIoU on the hold-out (one frozen forward per batch)."""
        model = self._model()
        head = model.decode_head
        dataset = self.holdout_loader.dataset
        metrics = [IoUMetric(iou_metrics=["mIoU"]) for _ in head.heads]
        for metric in metrics:
            metric.dataset_meta = dataset.metainfo
        model.eval()
        for batch in self.holdout_loader:
            data = model.data_preprocessor(batch, False)
            features = model.extract_feat(data["inputs"])
            metas = [sample.metainfo for sample in data["data_samples"]]
            for metric, logits in zip(metrics, head.all_logits(features)):
                seg_logits = head.predict_by_feat(logits, metas)
                samples = model.postprocess_result(seg_logits, copy.deepcopy(data["data_samples"]))
                metric.process(batch, [sample.to_dict() for sample in samples])
        return [float(metric.evaluate(len(dataset))["mIoU"]) for metric in metrics]

    def run(self) -> dict:
        self.runner.call_hook("before_val")
        self.runner.call_hook("before_val_epoch")
        scores = self.score_holdout()
        head = self._model().decode_head
        head.active = scores.index(max(scores))
        finished = self.runner.iter >= self.runner.max_iters
        metrics: dict[str, float] = {"holdout/mIoU": scores[head.active], "holdout/head": float(head.active)}
        if finished:  # the selection is final: the one evaluation of val
            self.runner.model.eval()
            for index, batch in enumerate(self.dataloader):
                self.run_iter(index, batch)
            metrics = {**self.evaluator.evaluate(len(self.dataloader.dataset)), **metrics}
        if self.runner.rank == 0:
            self._record(scores, head.active, finished)
        self.runner.call_hook("after_val_epoch", metrics=metrics)
        self.runner.call_hook("after_val")
        return metrics

    def _record(self, scores: list[float], chosen: int, final: bool) -> None:
        points = [{"head": i, "lr_mult": self.lr_multipliers[i] if i < len(self.lr_multipliers) else None,
                   "holdout_mIoU": score} for i, score in enumerate(scores)]
        records.atomic_write_json(os.path.join(self.runner.work_dir, SEG_PROBE_NAME), {
            "points": points, "chosen": points[chosen], "final": final, "step": self.runner.iter,
            "holdout": getattr(self.holdout_loader.dataset, "holdout_summary", None)})
