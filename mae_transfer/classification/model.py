"""The classification model on mmengine's Runner: MAEViT + pooling + norm + linear head.

Follows the official MAE fine-tuning model (``models_vit.py`` with ``global_pool``): mean of
the patch tokens (cls excluded) of the last block, ``fc_norm`` (LayerNorm, eps 1e-6), linear
head initialised with trunc_normal std 2e-5; the backbone's final norm is dropped. The linear
probe uses the cls token after the final norm and ``BatchNorm1d(affine=False, eps=1e-6)``
before the head (``main_linprobe.py``). Which parameters train is set by
:mod:`mae_transfer.classification.protocols`.

Other ViT families keep the suite's fine-tuning head (mean of the patch tokens, class and
register tokens excluded), while the linear probe reads the feature the family's own
evaluation reads (``EncoderOptions.probe_feature``): the cls token (MAE, DINO, CLIP), the mean
of the patch tokens (I-JEPA, SigLIP, BEiT) or both concatenated (DINOv2 ``eval/linear.py``),
always after the final norm.

Training loss (``main_finetune.py``): with Mixup/CutMix, timm's ``Mixup`` (label smoothing
folded into its soft targets) and ``SoftTargetCrossEntropy``; without, timm's
``LabelSmoothingCrossEntropy`` (smoothing > 0) or plain cross entropy. Mixup runs inside
``loss`` only, so validation and test batches are never mixed.
"""

from __future__ import annotations

from typing import Any

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModel
from timm.data import Mixup
from timm.layers import trunc_normal_
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from torch import nn

from mae_transfer import records
from mae_transfer.checkpoints.formats import forced_format
from mae_transfer.classification.protocols import Protocol, apply_protocol
from mae_transfer.models import build_vit

TOPK = 5


class MAEClassifier(BaseModel):
    """MAEViT classifier for the mmengine Runner.

    Args:
        backbone: ``build_vit`` arguments: ``arch``, ``family`` (``activation``, ``norm_eps``
            where the family needs them declared) plus any ``MAEViT`` keyword (``img_size`` is
            the grid the pos_embed is stored for; 448 for the H448 recipe, the 224
            checkpoint's grid is resized on load).
        num_classes: head outputs.
        protocol: ``finetune``, ``linear``, ``partial-K``, ``partial-mlp`` or the dict form
            ``dict(name="partial", num_blocks=K)`` (see :mod:`~mae_transfer.classification.protocols`).
        pretrained: checkpoint loaded into the backbone by ``init_weights`` (any format
            :func:`mae_transfer.checkpoints.load_pretrained` reads); None trains from scratch.
        pretrained_format: force the checkpoint's format (a ``checkpoints.formats.FORMATS``
            name; None or ``auto``: detected); a file of another format is refused.
        mixup: timm ``Mixup`` arguments (``mixup_alpha``, ``cutmix_alpha``, ``prob``,
            ``switch_prob``, ``mode``...), or None for no mixing. Needs even batch sizes.
        label_smoothing: label smoothing of the training targets.
        head_init_std: trunc_normal std of the head weight; default by protocol (2e-5, or
            0.01 for the linear probe, as in MAE).
        data_preprocessor: mmengine data preprocessor config (default: move to device).
        init_cfg: unused by this model; accepted for mmengine compatibility.
    """

    def __init__(
        self,
        backbone: dict[str, Any],
        num_classes: int,
        protocol: str | dict[str, Any] = "finetune",
        pretrained: str | None = None,
        mixup: dict[str, Any] | None = None,
        label_smoothing: float = 0.0,
        head_init_std: float | None = None,
        data_preprocessor: dict[str, Any] | None = None,
        init_cfg: dict[str, Any] | None = None,
        pretrained_format: str | None = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        backbone = dict(backbone)
        if "arch" not in backbone:
            raise ValueError("model.backbone: missing 'arch' (for example 'vit_base_patch16')")
        self.protocol = Protocol.parse(protocol)
        self.backbone = build_vit(backbone.pop("arch"), **backbone)
        if self.backbone.window is not None:
            raise ValueError("model.backbone: window attention drops the class tokens; classification needs the plain ViT")
        # fine-tuning pools the patch tokens (MAE global_pool); the linear probe reads the family's feature
        self.feature = "avg" if self.protocol.pool == "avg" else self.backbone.options.probe_feature
        self.pretrained = pretrained
        self.pretrained_format = forced_format(pretrained_format, "model.pretrained_format")
        self.num_classes = num_classes
        dim = self.backbone.embed_dim
        if self.protocol.pool == "avg":
            # MAE global_pool: the final norm is replaced by fc_norm after pooling
            self.backbone.norm = nn.Identity()
            self.fc_norm: nn.Module = nn.LayerNorm(dim, eps=1e-6)
        else:
            self.fc_norm = nn.Identity()
        width = 2 * dim if self.feature == "cls+avg" else dim
        self.head_norm = nn.BatchNorm1d(width, affine=False, eps=1e-6) if self.protocol.head_batchnorm else nn.Identity()
        self.head = nn.Linear(width, num_classes)
        trunc_normal_(self.head.weight, std=head_init_std or self.protocol.default_head_init_std)
        nn.init.zeros_(self.head.bias)

        self.mixup = Mixup(**mixup, label_smoothing=label_smoothing, num_classes=num_classes) if mixup else None
        if self.mixup is not None:
            self.criterion: nn.Module = SoftTargetCrossEntropy()
        elif label_smoothing > 0:
            self.criterion = LabelSmoothingCrossEntropy(smoothing=label_smoothing)
        else:
            self.criterion = nn.CrossEntropyLoss()
        self.trainable_names = apply_protocol(self, self.protocol, self.backbone.depth)

    def init_weights(self) -> None:
        """Load ``pretrained`` into the backbone (called by the Runner before training).

        The head and fc_norm are initialised in the constructor; no ``init_cfg`` is applied.
        """
        if self.pretrained:
            from mae_transfer.checkpoints import load_pretrained

            # the pooled head drops the backbone's final norm, as MAE's global_pool does
            ignore = ("norm.*",) if self.protocol.pool == "avg" else ()
            report = load_pretrained(self.backbone, self.pretrained, ignore=ignore, fmt=self.pretrained_format)
            print_log(f"pretrained backbone from {self.pretrained}:\n{report.render()}", logger="current")
            records.note_load(report.summary())  # written to the work dir as load_report.json

    def extract_features(self, inputs: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) -> pooled, normed features (B, C)."""
        tokens = self.backbone.forward_features(inputs)
        patches = tokens[:, self.backbone.num_prefix_tokens:]
        if self.feature == "avg":
            pooled = patches.mean(dim=1)
        elif self.feature == "cls":
            pooled = tokens[:, 0]
        else:
            pooled = torch.cat([tokens[:, 0], patches.mean(dim=1)], dim=-1)
        return self.fc_norm(pooled)

    def logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """Images -> class logits (B, num_classes)."""
        return self.head(self.head_norm(self.extract_features(inputs)))

    def forward(
        self, inputs: torch.Tensor, data_samples: Any = None, mode: str = "tensor"
    ) -> torch.Tensor | dict[str, torch.Tensor] | list[dict[str, torch.Tensor]]:
        """mmengine's three modes: ``loss`` (dict), ``predict`` (one dict per sample), ``tensor`` (logits)."""
        if mode == "loss":
            return self.loss(inputs, self._labels(data_samples, inputs.device))
        if mode == "predict":
            return self.predict(inputs, self._labels(data_samples, inputs.device))
        if mode == "tensor":
            return self.logits(inputs)
        raise ValueError(f"MAEClassifier.forward: unknown mode {mode!r}; expected 'loss', 'predict' or 'tensor'")

    def training_targets(self, inputs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixup/CutMix the batch (if configured): (inputs, soft targets (B, K)) or (inputs, labels)."""
        if self.mixup is None:
            return inputs, labels
        if inputs.shape[0] % 2:
            raise ValueError(
                f"Mixup/CutMix needs an even batch size, got {inputs.shape[0]}; set the train "
                "dataloader's batch_size to an even number and drop_last=True"
            )
        return self.mixup(inputs, labels)

    def loss(self, inputs: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training loss on a (possibly mixed) batch."""
        inputs, targets = self.training_targets(inputs, labels)
        return {"loss": self.criterion(self.logits(inputs), targets)}

    @torch.no_grad()
    def predict(self, inputs: torch.Tensor, labels: torch.Tensor | None) -> list[dict[str, torch.Tensor]]:
        """Per sample: ``pred_label``, ``pred_topk`` (top-5 class indices, best first), ``gt_label``."""
        scores = self.logits(inputs).float().softmax(dim=-1)
        topk = scores.topk(min(TOPK, scores.shape[-1]), dim=-1).indices.cpu()
        outputs = []
        for index in range(scores.shape[0]):
            sample = {"pred_label": topk[index, 0], "pred_topk": topk[index]}
            if labels is not None:
                sample["gt_label"] = labels[index].cpu()
            outputs.append(sample)
        return outputs

    @staticmethod
    def _labels(data_samples: Any, device: torch.device) -> torch.Tensor | None:
        if data_samples is None:
            return None
        if isinstance(data_samples, torch.Tensor):
            return data_samples.to(device=device, dtype=torch.long)
        return torch.as_tensor([int(label) for label in data_samples], dtype=torch.long, device=device)
