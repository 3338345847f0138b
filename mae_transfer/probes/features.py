"""Frozen features of a ViT: normed tokens of its last blocks, and the vectors probes read from them.

The backbone is :class:`~mae_transfer.models.MAEViT` (or any module with ``forward_last_blocks``,
``num_prefix_tokens``, ``cls_token`` and ``embed_dim``). Its token sequence is
``[prefix tokens..., patch tokens...]`` with ``P = num_prefix_tokens`` prefix tokens: the cls
token first when the model has one (timm's order: cls, then registers), then any register
tokens. Registers never count as patch tokens: patch tokens are always ``tokens[:, P:]``. A
model without a cls token has no ``cls`` feature; asking for it is refused.

Feature sources (CAPI ``eval_classification.py`` names them cls / avg_patch / cls_avg_patch):

- ``cls``: the cls tokens of the last ``n`` blocks, concatenated (n x C);
- ``avg``: the means of the patch tokens of the last ``n`` blocks, concatenated (n x C);
- ``both``: ``cls`` then ``avg`` (2n x C). At n = 1 this is DINOv2's ``avgpool=True`` input
  (``create_linear_input``: cls, then the mean of the patch tokens); at n = 4 DINOv2 appends
  only the last block's mean, we append all four (declared difference).
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from mae_transfer.probes.settings import FEATURE_SOURCES


class FeatureSourceError(ValueError):
    """A feature the backbone cannot give (``cls`` without a cls token, too many blocks)."""


def has_cls_token(backbone: nn.Module) -> bool:
    """Whether the backbone's sequence starts with a cls token."""
    return getattr(backbone, "cls_token", None) is not None


def knn_feature(backbone: nn.Module, setting: str) -> str:
    """The k-NN feature for ``probe.knn.feature``: ``auto`` is the cls token unless the family
    declares the mean of the patch tokens (``options.probe_feature == "avg"``) or has no cls token."""
    if setting != "auto":
        return setting
    declared = getattr(getattr(backbone, "options", None), "probe_feature", "cls")
    return "avg" if declared == "avg" or not has_cls_token(backbone) else "cls"


def check_source(backbone: nn.Module, source: str, blocks: int, where: str) -> None:
    """Refuse a source the backbone cannot give, naming the setting ``where``."""
    if source not in FEATURE_SOURCES:
        raise FeatureSourceError(f"{where}: unknown feature source {source!r}; expected one of {FEATURE_SOURCES}")
    if source in ("cls", "both") and not has_cls_token(backbone):
        raise FeatureSourceError(
            f"{where}: feature source {source!r} needs a cls token, and this backbone has none "
            f"(num_prefix_tokens={backbone.num_prefix_tokens}); use 'avg' (the mean of the patch tokens)")
    depth = len(backbone.blocks)
    if not 1 <= blocks <= depth:
        raise FeatureSourceError(f"{where}: last {blocks} blocks requested, the backbone has {depth}")


def feature_dim(embed_dim: int, source: str, blocks: int) -> int:
    """Width of a source's vector: C per block, twice for ``both``."""
    return embed_dim * blocks * (2 if source == "both" else 1)


def pooled(tokens: list[torch.Tensor], source: str, blocks: int, num_prefix: int) -> torch.Tensor:
    """The ``source`` vector (B, D) in float32 from normed block outputs (oldest first)."""
    last = tokens[-blocks:]
    parts = []
    if source in ("cls", "both"):
        parts.extend(t[:, 0] for t in last)  # the cls token comes first (timm's order)
    if source in ("avg", "both"):
        parts.extend(t[:, num_prefix:].mean(dim=1) for t in last)
    return torch.cat(parts, dim=-1).float()


def patch_tokens(tokens: list[torch.Tensor], num_prefix: int) -> torch.Tensor:
    """The last block's patch tokens (B, N, C) in float32 (registers and cls excluded)."""
    return tokens[-1][:, num_prefix:].float()


class FrozenBackbone(nn.Module):
    """A backbone in eval mode whose parameters never train; one call gives the last blocks' tokens.

    Args:
        backbone: the ViT.
        blocks: how many of the last blocks each forward returns.
        amp: bfloat16 autocast for the forward on a GPU (the tokens come back as float32); no
            effect on a CPU.
    """

    def __init__(self, backbone: nn.Module, blocks: int = 1, amp: bool = False) -> None:
        super().__init__()
        depth = len(backbone.blocks)
        if not 1 <= blocks <= depth:
            raise FeatureSourceError(f"FrozenBackbone: last {blocks} blocks requested, the backbone has {depth}")
        self.backbone = backbone
        self.blocks = blocks
        self.amp = amp
        self.backbone.requires_grad_(False)
        self.backbone.eval()

    @property
    def num_prefix(self) -> int:
        """Tokens before the patch tokens (cls and registers)."""
        return int(self.backbone.num_prefix_tokens)

    @property
    def embed_dim(self) -> int:
        """Token width C."""
        return int(self.backbone.embed_dim)

    def train(self, mode: bool = True) -> FrozenBackbone:
        """Stays in eval mode (dropout, drop path off) whatever the caller asks."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Images (B, 3, H, W) -> normed tokens (B, P + N, C) of the last ``blocks`` blocks, float32."""
        autocast = (torch.autocast(device_type="cuda", dtype=torch.bfloat16)
                    if self.amp and images.is_cuda else contextlib.nullcontext())
        with autocast:
            tokens = self.backbone.forward_last_blocks(images, self.blocks)
        return [t.float() for t in tokens]
