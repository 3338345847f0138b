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

# Names resolve on first use (PEP 562), so `mae_transfer.pretrain.files` (checkpoint names, used
# when a matrix is planned) imports without torch and timm.
_SOURCES = {
    "OfficialCheckpoint": "checkpoint", "build_from_checkpoint": "checkpoint", "load_official_checkpoint": "checkpoint",
    "read_official_checkpoint": "checkpoint", "save_official_checkpoint": "checkpoint",
    "checkpoint_name": "files", "pretrain_checkpoint_path": "files",
    "RandomMask": "masking", "check_mask_ratio": "masking", "random_masking": "masking",
    "DecoderConfig": "model", "MAEOutput": "model", "MaskedAutoencoderViT": "model", "build_mae": "model",
    "patchify": "patches", "unpatchify": "patches",
}


def __getattr__(name: str):
    if name not in _SOURCES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{_SOURCES[name]}"), name)


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
