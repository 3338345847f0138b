"""Pure-PyTorch models: the MAE ViT encoder and the feature-pyramid adapters (no mm* imports).

The arch vocabulary (``ARCHS``, ``ViTArch``, ``build_vit``) imports without torch; ``MAEViT``
and ``WindowConfig`` import torch on first use, so the matrix spec can read the arch names
cheaply.
"""

from __future__ import annotations

from typing import Any

from mae_transfer.models.archs import ARCHS, ViTArch, build_vit, vit_arch

__all__ = ["ARCHS", "MAEViT", "ViTArch", "WindowConfig", "build_vit", "vit_arch"]

_LAZY = {"MAEViT": "mae_transfer.models.vit", "WindowConfig": "mae_transfer.models.window"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
