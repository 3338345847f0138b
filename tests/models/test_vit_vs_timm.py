"""MAEViT is the same network as timm's VisionTransformer for the same weights."""

import pytest
import timm
import torch

from mae_transfer.models import build_vit
from mae_transfer.models.pos_embed import resize_pos_embed

TIMM_NAMES = {"vit_tiny_patch16": "vit_tiny_patch16_224", "vit_base_patch16": "vit_base_patch16_224"}


def _random_timm(name: str, img_size=(224, 224)) -> torch.nn.Module:
    model = timm.create_model(name, pretrained=False, num_classes=0, img_size=img_size).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.02)
    return model


@pytest.mark.parametrize("arch", sorted(TIMM_NAMES))
def test_forward_features_equal_timm_at_224(arch):
    reference = _random_timm(TIMM_NAMES[arch])
    ours = build_vit(arch).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    images = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, actual = reference.forward_features(images), ours.forward_features(images)
    assert actual.shape == (2, 197, ours.embed_dim)
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("arch", sorted(TIMM_NAMES))
def test_forward_features_equal_timm_at_non_square_size(arch):
    # timm built for 256x320 holds the pos_embed our model derives at run time (bicubic,
    # align_corners=False, as MAE and MMSeg resize; timm's own run-time resampling antialiases).
    size = (256, 320)
    ours = build_vit(arch).eval()
    with torch.no_grad():
        for param in ours.parameters():
            param.normal_(std=0.02)
    reference = timm.create_model(TIMM_NAMES[arch], pretrained=False, num_classes=0, img_size=size).eval()
    state = dict(ours.state_dict())
    state["pos_embed"] = resize_pos_embed(state["pos_embed"], (16, 20), (14, 14))
    reference.load_state_dict(state, strict=True)
    images = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected, actual = reference.forward_features(images), ours.forward_features(images)
    assert actual.shape == (2, 1 + 16 * 20, ours.embed_dim)
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)


def test_layer_scale_matches_timm_init_values():
    reference = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, init_values=0.1).eval()
    with torch.no_grad():
        for param in reference.parameters():
            param.normal_(std=0.05)
    ours = build_vit("vit_tiny_patch16", layer_scale_init=0.1).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    images = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(images), reference.forward_features(images), atol=1e-5, rtol=0)
