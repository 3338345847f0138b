"""Pure-PyTorch models: the MAE ViT encoder and the feature-pyramid adapters (no mm* imports)."""

from mae_transfer.models.archs import ARCHS, ViTArch, build_vit
from mae_transfer.models.vit import MAEViT
from mae_transfer.models.window import WindowConfig

__all__ = ["ARCHS", "MAEViT", "ViTArch", "WindowConfig", "build_vit"]
