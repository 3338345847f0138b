"""MAE pre-training (He et al., "Masked Autoencoders Are Scalable Vision Learners", 2021).

Pure PyTorch + timm (no OpenMMLab imports); the mmengine integration is
:mod:`mae_transfer.integrations.pretrain`.

- :mod:`~mae_transfer.pretrain.patches`: patchify / unpatchify, norm-pix statistics;
- :mod:`~mae_transfer.pretrain.masking`: per-sample random masking by shuffling;
- :mod:`~mae_transfer.pretrain.loss`: MSE on the removed patches;
- :mod:`~mae_transfer.pretrain.model`: :class:`MaskedAutoencoderViT` (MAEViT encoder + decoder);
- :mod:`~mae_transfer.pretrain.optim`: the official weight-decay groups;
- :mod:`~mae_transfer.pretrain.checkpoint`: official-format checkpoints;
- :mod:`~mae_transfer.pretrain.visualize`: reconstruction figures.
"""

from mae_transfer.pretrain.checkpoint import (
    OfficialCheckpoint,
    build_from_checkpoint,
    checkpoint_name,
    load_official_checkpoint,
    pretrain_checkpoint_path,
    read_official_checkpoint,
    save_official_checkpoint,
)
from mae_transfer.pretrain.masking import RandomMask, check_mask_ratio, random_masking
from mae_transfer.pretrain.model import DecoderConfig, MAEOutput, MaskedAutoencoderViT, build_mae
from mae_transfer.pretrain.patches import patchify, unpatchify

__all__ = [
    "DecoderConfig",
    "MAEOutput",
    "MaskedAutoencoderViT",
    "OfficialCheckpoint",
    "RandomMask",
    "build_from_checkpoint",
    "build_mae",
    "check_mask_ratio",
    "checkpoint_name",
    "load_official_checkpoint",
    "patchify",
    "pretrain_checkpoint_path",
    "random_masking",
    "read_official_checkpoint",
    "save_official_checkpoint",
    "unpatchify",
]
