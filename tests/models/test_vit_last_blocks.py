"""MAEViT.forward_last_blocks: the normed outputs of the last n blocks, as timm's
``get_intermediate_layers(..., norm=True)`` returns them for the same weights."""

import pytest
import timm
import torch

from mae_transfer.models import build_vit


@pytest.fixture(scope="module")
def pair() -> tuple[torch.nn.Module, torch.nn.Module]:
    reference = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, img_size=64, depth=4).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in reference.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.05)
    ours = build_vit("vit_tiny_patch16", depth=4, img_size=64).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    return reference, ours


@pytest.mark.parametrize("n", [1, 4])
def test_last_blocks_equal_timm_intermediate_layers_with_norm(pair, n):
    reference, ours = pair
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference.get_intermediate_layers(images, n=n, return_prefix_tokens=True, norm=True)
        actual = ours.forward_last_blocks(images, n)
        features = ours.forward_features(images)
    assert len(actual) == n and ours.num_prefix_tokens == 1
    for tokens, (patches, prefix) in zip(actual, expected):
        assert tokens.shape == (2, 1 + 16, 192)
        torch.testing.assert_close(tokens[:, :1], prefix, atol=1e-5, rtol=0)
        torch.testing.assert_close(tokens[:, 1:], patches, atol=1e-5, rtol=0)
    assert torch.equal(actual[-1], features)  # the last block's is forward_features, bit for bit


def test_last_blocks_refuses_what_the_model_cannot_give():
    model = build_vit("vit_tiny_patch16", depth=2, img_size=32)
    with pytest.raises(ValueError, match=r"n=3 must lie in \[1, 2\]"):
        model.forward_last_blocks(torch.zeros(1, 3, 32, 32), 3)
    maps = build_vit("vit_tiny_patch16", depth=2, img_size=32, maps_only=True)
    with pytest.raises(RuntimeError, match="maps_only"):
        maps.forward_last_blocks(torch.zeros(1, 3, 32, 32), 1)
