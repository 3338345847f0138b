"""Pretrained checkpoint reading, format detection, conversion and validated loading.

Pure PyTorch (no OpenMMLab imports). Entry point: `load_pretrained(model, source)`.
"""

from mae_transfer.checkpoints.arch import ArchShape, arch_shape, detect_arch
from mae_transfer.checkpoints.convert import (
    ConvertedCheckpoint,
    convert_checkpoint,
    convert_state_dict,
)
from mae_transfer.checkpoints.errors import CheckpointError
from mae_transfer.checkpoints.formats import FORMATS, DetectedCheckpoint, detect_format
from mae_transfer.checkpoints.load import load_pretrained, open_checkpoint, plan_load
from mae_transfer.checkpoints.reader import RawCheckpoint, read_checkpoint
from mae_transfer.checkpoints.report import DroppedKey, LoadReport, MissingKey, ResizedKey

__all__ = [
    "ArchShape",
    "CheckpointError",
    "ConvertedCheckpoint",
    "DetectedCheckpoint",
    "DroppedKey",
    "FORMATS",
    "LoadReport",
    "MissingKey",
    "RawCheckpoint",
    "ResizedKey",
    "arch_shape",
    "convert_checkpoint",
    "convert_state_dict",
    "detect_arch",
    "detect_format",
    "load_pretrained",
    "open_checkpoint",
    "plan_load",
    "read_checkpoint",
]
