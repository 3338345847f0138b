"""Pretrained checkpoint reading, format detection, conversion and validated loading.

Pure PyTorch (no OpenMMLab imports). Entry point: `load_pretrained(model, source)`. The names
below import their module (and torch) on first use, so the format vocabulary
(`mae_transfer.checkpoints.formats.FORMATS`) reads without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> its module in this package
_EXPORTS = {
    "ArchShape": "arch", "arch_shape": "arch", "detect_arch": "arch",
    "ConvertedCheckpoint": "convert", "convert_checkpoint": "convert", "convert_state_dict": "convert",
    "CheckpointError": "errors",
    "FORMATS": "formats", "DetectedCheckpoint": "formats", "detect_format": "formats", "require_format": "formats",
    "load_pretrained": "load", "open_checkpoint": "load", "plan_load": "load",
    "RawCheckpoint": "reader", "read_checkpoint": "reader",
    "DroppedKey": "report", "LoadReport": "report", "MissingKey": "report", "ResizedKey": "report",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
