"""MMDetection integration: the MAE ViT backbone, its pyramid adapters and the COCO metric.

Configs reach everything through one import::

    custom_imports = dict(imports=["mae_transfer.integrations.mmdet"], allow_failed_imports=False)

Registered names (none collides with mmdet's own ``ViT``/``MAE`` or its projects):

- ``MAETransferViT`` (``mmdet.registry.MODELS``): ``build_vit(arch, **overrides)`` plus the
  pretrained load, returning either the last map (for ``MAETransferSimpleFeaturePyramid``)
  or, with ``adapter="multi_level"``, four maps at strides 4, 8, 16, 32 for mmdet's ``FPN``;
- ``MAETransferSimpleFeaturePyramid`` (``mmdet.registry.MODELS``): the ViTDet neck;
- ``MAETransferLayerNorm2d`` (mmengine's root ``MODELS``, so ``norm_cfg`` finds it from any
  scope): timm's LayerNorm over the channels of an NCHW map, for ViTDet's box and mask heads;
- ``MAETransferFastCocoMetric`` (``mmdet.registry.METRICS``): ``CocoMetric`` on faster-coco-eval;
- ``MAETransferLayerDecayOptimWrapperConstructor`` and the resume fix, through
  ``mae_transfer.integrations.engine``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from mmengine.model import BaseModule
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmdet.registry import MODELS
from timm.layers import LayerNorm2d

import mae_transfer.integrations.coco_metric  # noqa: F401  (registers MAETransferFastCocoMetric)
import mae_transfer.integrations.engine  # noqa: F401  (resume fix, layer-decay constructor)
from mae_transfer.integrations.backbone_common import PretrainedViTBackbone
from mae_transfer.models import MAEViT, build_vit
from mae_transfer.models.pyramid import MultiLevelRescale, SimpleFeaturePyramid

__all__ = ["MAETransferLayerNorm2d", "MAETransferSimpleFeaturePyramid", "MAETransferViT", "group_end_indices"]

ADAPTERS = (None, "multi_level")


@MMENGINE_MODELS.register_module()
class MAETransferLayerNorm2d(LayerNorm2d):
    """timm's channel LayerNorm for NCHW maps (the one the core pyramid uses), for ``norm_cfg``."""


def group_end_indices(depth: int, groups: int = 4) -> list[int]:
    """Last block of each of ``groups`` equal block groups: depth 12 -> [2, 5, 8, 11]."""
    if depth % groups:
        raise ValueError(f"depth {depth} does not split into {groups} equal groups")
    size = depth // groups
    return [size * (k + 1) - 1 for k in range(groups)]


@MODELS.register_module()
class MAETransferViT(PretrainedViTBackbone):
    """MAE ViT backbone for mmdet detectors.

    Args:
        arch: a ``mae_transfer.models.ARCHS`` name, e.g. ``"vit_base_patch16"``.
        adapter: None to return the last block's map (ViTDet: feed
            ``MAETransferSimpleFeaturePyramid``); ``"multi_level"`` to return four maps at
            strides 4, 8, 16, 32 from four block taps (MAE paper A.3: feed mmdet's ``FPN``).
        out_indices: block taps; default the last block, or the four group ends with the
            multi-level adapter.
        pretrained: checkpoint path loaded by ``mae_transfer.checkpoints.load_pretrained`` in
            ``init_weights`` (any format it detects); its LoadReport is logged.
        init_cfg: mmengine init configs; a ``dict(type="Pretrained", checkpoint=...)`` entry is
            the same as ``pretrained``.
        pretrained_format: force the checkpoint's format (a ``checkpoints.formats.FORMATS``
            name; None or ``auto``: detected); a file of another format is refused.
        adapter_norm: normalisation inside the adapter's x4 branch (``bn``, ``syncbn``, ``ln``,
            ``gn``; see ``mae_transfer.models.pyramid.make_norm``).
        **overrides: ``family`` (with ``activation``/``norm_eps`` where the family needs them
            declared; window attention then runs on the patch tokens alone: the checkpoint's
            class and register tokens are reported as dropped, LayerScale is kept) or any other
            ``MAEViT`` keyword (``img_size``, ``drop_path_rate``,
            ``window`` (``size``, ``global_blocks``, ``rel_pos`` ``"decomposed"``/``"shared"``,
            ``global_grid``), ``depth`` ...). The backbone is built with ``maps_only=True``: the
            checkpoint's final norm (and cls token, with window attention) is reported as
            dropped.
    """

    def __init__(
        self,
        arch: str = "vit_base_patch16",
        adapter: str | None = None,
        out_indices: Sequence[int] | None = None,
        pretrained: str | None = None,
        init_cfg: dict | list[dict] | None = None,
        adapter_norm: str = "bn",
        pretrained_format: str | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__(arch, pretrained, init_cfg, pretrained_format)
        if adapter not in ADAPTERS:
            raise ValueError(f"MAETransferViT: adapter must be one of {ADAPTERS}, got {adapter!r}")
        self.adapter_name = adapter
        probe_depth = overrides.get("depth") or self.arch_shape.depth
        if out_indices is None:
            out_indices = group_end_indices(probe_depth) if adapter else [probe_depth - 1]
        if adapter and len(out_indices) != 4:
            raise ValueError(f"MAETransferViT: the multi-level adapter takes 4 block taps, got {list(out_indices)}")
        # maps_only: no final norm, no cls token under window attention, no block after the
        # last tap, so every backbone parameter gets a gradient (DDP without unused parameters)
        self.vit: MAEViT = build_vit(arch, out_indices=tuple(out_indices), maps_only=True, **overrides)
        self.adapter = MultiLevelRescale(self.vit.embed_dim, norm=adapter_norm) if adapter else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Images (B, 3, H, W) -> tuple of NCHW maps (see ``adapter``)."""
        maps = self.vit.forward_maps(x)
        if self.adapter is not None:
            return tuple(self.adapter(maps))
        return tuple(maps)


@MODELS.register_module()
class MAETransferSimpleFeaturePyramid(BaseModule):
    """ViTDet's simple feature pyramid as an mmdet neck: the backbone's last map -> 5 levels.

    Levels at strides 4, 8, 16, 32 from x4 / x2 / x1 / x0.5 resampling of the last map (each
    followed by a 1x1 and a 3x3 convolution with LayerNorm) and a stride-64 level by max pool.

    Args:
        in_channels: width of the backbone map.
        out_channels: width of every level (256 in ViTDet).
        norm: normalisation after each convolution (``ln`` in ViTDet; see
            ``mae_transfer.models.pyramid.make_norm``).
        init_cfg: mmengine init configs.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 256,
        norm: str = "ln",
        init_cfg: dict | list[dict] | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.pyramid = SimpleFeaturePyramid(in_channels, out_channels, norm=norm)

    def forward(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Backbone outputs (the last one is used) -> maps at strides 4, 8, 16, 32, 64."""
        return tuple(self.pyramid(inputs[-1]))
