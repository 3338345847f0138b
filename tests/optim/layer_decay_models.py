"""Tiny models holding an MAEViT, shared by the layer-decay tests (imported by name)."""

from __future__ import annotations

import torch
from torch import nn

from mae_transfer.models import MAEViT, build_vit

DEPTH = 4
EMBED_DIM = 32


def tiny_vit(**overrides) -> MAEViT:
    """A 4-block, 32-wide ViT on a 32x32 input (2x2 patch grid)."""
    options = dict(depth=DEPTH, embed_dim=EMBED_DIM, num_heads=2, img_size=32)
    options.update(overrides)
    return build_vit("vit_tiny_patch16", **options)


class TinyClassifier(nn.Module):
    """Backbone + a neck (with its own LayerNorm) + a linear head: a classifier in miniature."""

    def __init__(self, num_classes: int = 5, **vit_overrides) -> None:
        super().__init__()
        self.backbone = tiny_vit(**vit_overrides)
        self.neck = nn.Sequential(nn.Linear(EMBED_DIM, EMBED_DIM), nn.LayerNorm(EMBED_DIM))
        self.head = nn.Linear(EMBED_DIM, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.neck(self.backbone.forward_features(images)[:, 0]))
