"""MMSegmentation integration: the MAE ViT backbone and the multi-level neck for UperNet (ADE20K).

Configs reach everything through one import::

    custom_imports = dict(imports=["mae_transfer.integrations.mmseg"], allow_failed_imports=False)

Registered into ``mmseg.registry.MODELS`` (names that cannot collide with mmseg's own ``MAE``,
``ViT``, ``BEiT`` or ``MultiLevelNeck``):

- ``MAETransferSegViT``: ``build_vit(arch, rel_pos_bias=True, ...)`` (MAE paper A.4: BEiT-style
  relative position bias turned on for transfer, zero-initialised; the absolute position
  embedding is resized from the checkpoint's grid), returning the NCHW maps of the tapped
  blocks; the pretrained checkpoint, in any format ``load_pretrained`` detects (official MAE,
  timm, MMPretrain/MMSelfSup, MMSeg-converted, MoCo v3, BEiT, DeiT), is read directly in
  ``init_weights`` and its ``LoadReport`` logged; no offline conversion step.
- ``MAETransferMultiLevelNeck``: the four tapped maps (stride 16) -> strides 4, 8, 16, 32 by
  deconv x4 (deconv, norm, GELU, deconv) / deconv x2 / identity / max pool, the same network
  as mmseg's ``Feature2Pyramid`` with ``rescales=[4, 2, 1, 0.5]``.

Importing this module also imports :mod:`mae_transfer.integrations.engine` (the resume fix for
torch >= 2.6 and ``MAETransferLayerDecayOptimWrapperConstructor``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from mmengine.model import BaseModule
from mmseg.registry import MODELS

import mae_transfer.integrations.engine  # noqa: F401  (resume fix, layer-decay constructor)
from mae_transfer.checkpoints.openmmlab_names import timm_to_mm
from mae_transfer.integrations.backbone_common import PretrainedViTBackbone
from mae_transfer.models import MAEViT, build_vit
from mae_transfer.models.pyramid import MultiLevelRescale, norm_name

__all__ = [
    "MAETransferMultiLevelNeck",
    "MAETransferSegViT",
    "UPERNET_TAPS",
    "to_mmseg_feature2pyramid_state_dict",
    "to_mmseg_mae_state_dict",
]

# Blocks tapped for UperNet (MMSeg configs/mae and MAE paper A.4 follow BEiT's choice).
UPERNET_TAPS: dict[str, tuple[int, ...]] = {
    "vit_tiny_patch16": (3, 5, 7, 11),
    "vit_small_patch16": (3, 5, 7, 11),
    "vit_base_patch16": (3, 5, 7, 11),
    "vit_large_patch16": (7, 11, 15, 23),
    "vit_huge_patch14": (7, 15, 23, 31),
    # the other families' shapes: the same group ends (ViT-g/14: 40 blocks in four groups of ten)
    "vit_small_patch14": (3, 5, 7, 11),
    "vit_base_patch14": (3, 5, 7, 11),
    "vit_large_patch14": (7, 11, 15, 23),
    "vit_giant_patch14": (9, 19, 29, 39),
}


@MODELS.register_module()
class MAETransferSegViT(PretrainedViTBackbone):
    """MAE ViT backbone for mmseg segmentors: images -> one NCHW map (stride p) per tapped block.

    The maps are the raw outputs of the tapped blocks with the cls token dropped (no final
    norm), as in mmseg's ``MAE`` backbone with ``final_norm=False``. The ViT is built with
    ``maps_only=True``: it has no final norm and no block after the last tap, and their
    checkpoint keys are reported as dropped.

    Args:
        arch: a ``mae_transfer.models.ARCHS`` name, e.g. ``"vit_base_patch16"``.
        out_indices: tapped blocks; default ``UPERNET_TAPS[arch]`` (B [3, 5, 7, 11],
            L [7, 11, 15, 23]).
        img_size: the grid the position embedding and relative position tables are stored for
            (the training crop, 512 for ADE20K); the checkpoint's are resized to it on load and
            other input sizes are resized at run time.
        rel_pos_bias: BEiT-style relative position bias, zero-initialised (MAE paper A.4).
        pretrained: checkpoint path read by ``mae_transfer.checkpoints.load_pretrained`` in
            ``init_weights``; None trains from the random init. EncoderDecoder's top-level
            ``pretrained`` lands here too.
        init_cfg: mmengine init configs; a ``dict(type="Pretrained", checkpoint=...)`` entry is
            the same as ``pretrained``.
        pretrained_format: force the checkpoint's format (a ``checkpoints.formats.FORMATS``
            name; None or ``auto``: detected); a file of another format is refused.
        **overrides: ``family`` (with ``activation``/``norm_eps`` where the family needs them
            declared) or any other ``MAEViT`` keyword (``drop_path_rate``, ``layer_scale_init``,
            ``depth``, ``grad_checkpointing`` ...). Class and register tokens run through the
            blocks with the patch tokens (global attention) and are dropped from the maps; the
            relative position bias serves them through the table's cls rows.
    """

    def __init__(
        self,
        arch: str = "vit_base_patch16",
        out_indices: Sequence[int] | None = None,
        img_size: int | Sequence[int] = 512,
        rel_pos_bias: bool = True,
        pretrained: str | None = None,
        init_cfg: dict | list[dict] | None = None,
        pretrained_format: str | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__(arch, pretrained, init_cfg, pretrained_format)
        if out_indices is None:
            if "depth" in overrides:
                raise ValueError("MAETransferSegViT: pass out_indices when overriding depth")
            out_indices = UPERNET_TAPS[arch]
        # maps_only: no final norm and no block after the last tap, so every backbone parameter
        # gets a gradient (DDP without unused parameters)
        self.vit: MAEViT = build_vit(
            arch,
            img_size=img_size,
            rel_pos_bias=rel_pos_bias,
            out_indices=tuple(out_indices),
            maps_only=True,
            **overrides,
        )
        if len(self.vit.out_indices) != len(out_indices):
            raise ValueError(f"MAETransferSegViT: out_indices {list(out_indices)} repeat a block")

    @property
    def out_indices(self) -> tuple[int, ...]:
        return self.vit.out_indices

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Images (B, 3, H, W) -> tuple of (B, C, H/p, W/p) maps, one per tapped block."""
        return tuple(self.vit.forward_maps(x))


@MODELS.register_module()
class MAETransferMultiLevelNeck(BaseModule):
    """Four stride-16 maps -> strides 4, 8, 16, 32 (MAE paper A.4; mmseg ``Feature2Pyramid``).

    Args:
        embed_dim: channels of the backbone maps (kept at every level).
        rescales: one factor per map, from {4, 2, 1, 0.5}.
        norm_cfg: normalisation inside the x4 branch, by ``type``: ``"BN"`` (default),
            ``"SyncBN"`` (the recipe; mmengine turns it into BatchNorm on a non-distributed
            run), ``"GN"``, ``"LN2d"`` or ``"none"``.
        init_cfg: mmengine init configs.
    """

    def __init__(
        self,
        embed_dim: int,
        rescales: Sequence[float] = (4, 2, 1, 0.5),
        norm_cfg: dict | None = None,
        init_cfg: dict | list[dict] | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        norm_type = (norm_cfg or {"type": "BN"}).get("type")
        try:
            norm = norm_name(norm_type)
        except ValueError as error:
            raise ValueError(f"MAETransferMultiLevelNeck: norm_cfg type: {error}") from None
        self.rescale = MultiLevelRescale(embed_dim, scales=tuple(rescales), norm=norm)

    def forward(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """(4 maps at stride 16) -> (maps at strides 4, 8, 16, 32)."""
        return tuple(self.rescale(inputs))


def to_mmseg_mae_state_dict(vit_state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An ``MAEViT`` state dict under the names of mmseg's ``MAE`` backbone (for comparisons).

    mmseg's ``MAE`` with ``final_norm=False`` has no final norm, so ``norm.*`` is left out; its
    layer scale (``gamma_1``/``gamma_2``) exists only when our model has ``layer_scale_init``.
    """
    return {timm_to_mm(key, family="mmseg"): value for key, value in vit_state.items() if not key.startswith("norm.")}


def to_mmseg_feature2pyramid_state_dict(neck_state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A ``MAETransferMultiLevelNeck`` state dict under mmseg ``Feature2Pyramid``'s names."""
    renames = (("rescale.branches.0.", "upsample_4x."), ("rescale.branches.1.", "upsample_2x.0."))
    out = {}
    for key, value in neck_state.items():
        for prefix, replacement in renames:
            if key.startswith(prefix):
                key = replacement + key[len(prefix):]
        out[key] = value
    return out
