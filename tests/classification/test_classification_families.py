"""Each family's classifier reads the feature its own evaluation reads, skipping cls and register tokens."""

from __future__ import annotations

import pytest
import torch

from mae_transfer.classification.model import MAEClassifier

TINY = dict(arch="vit_tiny_patch16", img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=2)


@pytest.mark.parametrize("family, feature, width", [("mae", "cls", 64), ("dinov2_reg", "cls+avg", 128),
                                                     ("ijepa", "avg", 64), ("siglip", "avg", 64)])
def test_linear_probe_reads_the_family_feature_after_the_final_norm(family: str, feature: str, width: int) -> None:
    torch.manual_seed(0)
    model = MAEClassifier({**TINY, "family": family}, num_classes=5, protocol="linear").eval()
    assert model.feature == feature and model.head.in_features == width
    images = torch.randn(3, 3, 32, 32)
    tokens = model.backbone.forward_features(images)
    prefix = model.backbone.num_prefix_tokens
    assert prefix == {"mae": 1, "dinov2_reg": 5, "ijepa": 0, "siglip": 0}[family]
    pieces = {"cls": [tokens[:, 0]], "avg": [tokens[:, prefix:].mean(1)],
              "cls+avg": [tokens[:, 0], tokens[:, prefix:].mean(1)]}[feature]
    torch.testing.assert_close(model.extract_features(images), torch.cat(pieces, dim=-1))
    assert model.trainable_names == ["head.weight", "head.bias"]


@pytest.mark.parametrize("family", ["dinov2_reg", "siglip"])
def test_finetuning_pools_patch_tokens_only_and_every_parameter_learns(family: str) -> None:
    torch.manual_seed(0)
    model = MAEClassifier({**TINY, "family": family}, num_classes=5, protocol="finetune")
    images, labels = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    model.loss(images, labels)["loss"].backward()
    assert [name for name, p in model.named_parameters() if p.grad is None] == []
    tokens = model.backbone.forward_features(images)
    expected = model.fc_norm(tokens[:, model.backbone.num_prefix_tokens:].mean(1))
    torch.testing.assert_close(model.extract_features(images), expected)
