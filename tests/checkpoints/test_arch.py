"""Architecture detection from shapes, in any naming."""

from __future__ import annotations

import pytest
import torch

from checkpoint_cases import timm_state, to_openmmlab
from mae_transfer.checkpoints import detect_arch
from mae_transfer.checkpoints.arch import infer_model_overrides
from mae_transfer.models import ARCHS, build_vit


def _shapes(dim: int, depth: int, patch: int) -> dict[str, torch.Tensor]:
    """Shape-only (meta) tensors of a ViT encoder."""
    sd = {"patch_embed.proj.weight": torch.empty(dim, 3, patch, patch, device="meta")}
    for i in range(depth):
        sd[f"blocks.{i}.attn.qkv.weight"] = torch.empty(3 * dim, dim, device="meta")
    return sd


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_known_archs_are_detected(arch: str) -> None:
    dim, depth, patch = ARCHS[arch].embed_dim, ARCHS[arch].depth, ARCHS[arch].patch_size
    assert detect_arch(_shapes(dim, depth, patch)) == arch


def test_unknown_shapes_give_none() -> None:
    assert detect_arch(_shapes(768, 4, 16)) is None
    assert detect_arch(_shapes(768, 12, 8)) is None
    assert detect_arch({"conv1.weight": torch.zeros(1)}) is None


def test_detects_through_openmmlab_naming() -> None:
    sd = {"backbone." + to_openmmlab(k): v for k, v in timm_state(num_classes=0).items()}
    assert detect_arch({"state_dict": sd}) == "vit_tiny_patch16"


def test_overrides_for_a_vitdet_checkpoint() -> None:
    sd = _shapes(768, 12, 16)
    for i in range(12):
        length = 127 if i in (2, 5, 8, 11) else 27
        sd[f"blocks.{i}.attn.rel_pos_h"] = torch.empty(length, 64, device="meta")
    sd["pos_embed"] = torch.empty(1, 197, 768, device="meta")
    overrides = infer_model_overrides(sd)
    # the global blocks' 127-row tables give their run grid (64); pos_embed keeps its 224 grid
    assert overrides == {
        "img_size": 224,
        "window": {"size": 14, "global_blocks": [2, 5, 8, 11], "rel_pos": "decomposed", "global_grid": 64},
    }
    with torch.device("meta"):
        model = build_vit("vit_base_patch16", **overrides)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert all(shapes[k] == tuple(v.shape) for k, v in sd.items()), "the inferred model holds the checkpoint as is"


def test_overrides_for_a_non_standard_shape() -> None:
    sd = _shapes(192, 2, 16)
    sd["pos_embed"] = torch.empty(1, 1 + 24 * 24, 192, device="meta")
    assert infer_model_overrides(sd) == {
        "embed_dim": 192, "depth": 2, "patch_size": 16, "num_heads": 3, "img_size": 384,
    }
