"""MaskedAutoencoderViT: official patch order, encoder on visible patches, decoder, loss, init, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from pretrain_helpers import official_mae_shapes, state_shapes, tiny_mae

from mae_transfer.models import build_vit
from mae_transfer.models.pos_embed import sincos_2d_pos_embed
from mae_transfer.pretrain import build_mae, patchify, unpatchify
from mae_transfer.pretrain.loss import masked_patch_loss
from mae_transfer.pretrain.patches import NORM_PIX_EPS, normalize_patches


def test_patchify_uses_the_official_n_c_hp_wq_to_n_hw_pqc_order() -> None:
    images = torch.randn(2, 3, 8, 12)
    patches = patchify(images, 4)
    assert patches.shape == (2, 6, 48)
    for n, h, w, p, q, c in [(0, 0, 0, 0, 0, 0), (1, 1, 2, 3, 1, 2), (0, 1, 0, 2, 3, 1), (1, 0, 2, 0, 3, 0)]:
        assert patches[n, h * 3 + w, (p * 4 + q) * 3 + c] == images[n, c, h * 4 + p, w * 4 + q]
    assert torch.equal(unpatchify(patches, 4, (2, 3)), images)


def test_norm_pix_target_has_zero_mean_and_unit_unbiased_variance_per_patch() -> None:
    patches = torch.rand(2, 5, 48) * 3 + 1
    target = normalize_patches(patches)
    var = patches.var(dim=-1, keepdim=True)  # unbiased, as the official target.var(dim=-1)
    assert torch.allclose(target.mean(-1), torch.zeros(2, 5), atol=1e-5)
    assert torch.allclose(target.var(-1, keepdim=True), var / (var + NORM_PIX_EPS), atol=1e-5)


def test_loss_averages_the_per_patch_mse_over_removed_patches_only() -> None:
    pred, target = torch.randn(2, 4, 6), torch.randn(2, 4, 6)
    mask = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
    expected = sum(((pred[n, l] - target[n, l]) ** 2).mean() for n, l in [(0, 0), (0, 2), (1, 2), (1, 3)]) / 4
    assert torch.allclose(masked_patch_loss(pred, target, mask), expected)
    changed = pred.clone()
    changed[mask == 0] += 100.0  # visible patches do not count
    assert torch.allclose(masked_patch_loss(changed, target, mask), expected)
    with pytest.raises(ValueError, match="removes no patch"):
        masked_patch_loss(pred, target, torch.zeros(2, 4))


def test_encoder_with_mask_ratio_zero_equals_forward_features_of_the_same_weights() -> None:
    mae = tiny_mae().eval()
    encoder = {k: v for k, v in mae.state_dict().items() if not k.startswith(("decoder_", "mask_token"))}
    vit = build_vit("vit_tiny_patch16", img_size=64, depth=2).eval()
    vit.load_state_dict(encoder, strict=True)
    images = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        latent, masking = mae.forward_encoder(images, mask_ratio=0.0, generator=torch.Generator().manual_seed(3))
        reference = vit.forward_features(images)
    assert masking.num_visible == 16 and not torch.equal(masking.ids_keep, torch.arange(16).expand(3, -1))
    restored = torch.gather(latent[:, 1:], 1, masking.ids_restore.unsqueeze(-1).expand(-1, -1, latent.shape[-1]))
    assert torch.allclose(latent[:, 0], reference[:, 0], atol=1e-5)
    assert torch.allclose(restored, reference[:, 1:], atol=1e-5)


def test_forward_runs_the_encoder_on_the_visible_patches_only() -> None:
    mae = tiny_mae()
    seen = []
    mae.blocks[0].register_forward_hook(lambda module, args, out: seen.append(args[0].shape[1]))
    mae(torch.randn(2, 3, 64, 64))
    assert seen == [1 + int(16 * (1 - 0.75))]  # cls + 4 visible tokens


def test_every_trainable_parameter_gets_a_gradient_and_the_position_tables_are_fixed() -> None:
    mae = tiny_mae(norm_pix_loss=True)
    output = mae(torch.randn(2, 3, 64, 64))
    output.loss.backward()
    assert output.pred.shape == (2, 16, 16 * 16 * 3) and output.mask.shape == (2, 16)
    trainable = {name for name, p in mae.named_parameters() if p.requires_grad}
    assert {name for name, p in mae.named_parameters() if p.requires_grad and p.grad is None} == set()
    assert {name for name, _ in mae.named_parameters()} - trainable == {"pos_embed", "decoder_pos_embed"}


def test_official_initialisation() -> None:
    mae = tiny_mae()
    assert torch.equal(mae.pos_embed, sincos_2d_pos_embed(192, (4, 4)))
    assert torch.equal(mae.decoder_pos_embed, sincos_2d_pos_embed(64, (4, 4)))
    for name, module in mae.named_modules():
        if isinstance(module, torch.nn.LayerNorm):
            assert torch.equal(module.weight, torch.ones_like(module.weight)), name
            assert torch.equal(module.bias, torch.zeros_like(module.bias)) and module.eps == 1e-6, name
        elif isinstance(module, torch.nn.Linear):
            bound = math.sqrt(6.0 / (module.in_features + module.out_features))  # xavier_uniform
            assert module.weight.abs().max() <= bound and module.weight.abs().max() > 0.9 * bound, name
            assert torch.equal(module.bias, torch.zeros_like(module.bias)), name
    weight = mae.patch_embed.proj.weight
    bound = math.sqrt(6.0 / (weight.shape[0] + 16 * 16 * 3))  # xavier_uniform on the (C, p*p*3) view
    assert bound * 0.9 < weight.abs().max() <= bound
    for token in (mae.cls_token, mae.mask_token):  # normal(std 0.02)
        assert 0.015 < token.std() < 0.025 and token.abs().max() > 0


def test_vit_base_decoder_512x8_has_the_official_key_names_and_shapes() -> None:
    with torch.device("meta"):
        mae = build_mae("vit_base_patch16")
    shapes = state_shapes(mae.state_dict())
    assert shapes == official_mae_shapes(768, 12, 16, 14, 512, 8)
    # spot values typed from the official mae_vit_base_patch16_dec512d8b
    assert shapes["decoder_pred.weight"] == (768, 512) and shapes["decoder_pos_embed"] == (1, 197, 512)
    assert shapes["decoder_blocks.7.mlp.fc1.weight"] == (2048, 512) and "decoder_blocks.8.norm1.weight" not in shapes


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(img_size=72), r"img_size=72 is not divisible by patch_size=16"),
        (dict(mask_ratio=0.95), r"mask_ratio=0.95 leaves no visible patch"),
        (dict(mask_ratio=0.0), r"mask_ratio=0.0 masks none of the 16 patches"),
        (dict(decoder=dict(embed_dim=66, num_heads=2)), r"decoder.embed_dim=66: the 2-D sin-cos table"),
        (dict(decoder=dict(width=64)), r"decoder: unknown key\(s\) \['width'\]"),
        (dict(window=dict(size=2)), r"window: a transfer option"),
    ],
)
def test_bad_configuration_is_refused_naming_the_key_and_value(kwargs, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tiny_mae(**kwargs)


def test_an_input_of_another_size_is_refused() -> None:
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 3, 64, 64\).*got \(1, 3, 96, 96\)"):
        tiny_mae()(torch.randn(1, 3, 96, 96))
