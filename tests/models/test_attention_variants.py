"""Relative position bias, window attention and activation checkpointing."""

import math

import torch

from mae_transfer.models import build_vit
from mae_transfer.models.attention import decomposed_rel_pos_bias
from mae_transfer.models.vit import window_partition, window_unpartition


def _tiny(**overrides):
    return build_vit("vit_tiny_patch16", depth=4, img_size=64, **overrides)


def _randomize(model, std=0.05, seed=0):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * std)
    return model


def test_zero_initialised_rel_pos_bias_leaves_the_network_unchanged():
    plain = _tiny().eval()
    biased = _tiny(rel_pos_bias=True).eval()
    missing = biased.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(key.endswith("relative_position_bias_table") for key in missing)
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(biased(images), plain(images))
        biased.blocks[0].attn.relative_position_bias_table.normal_()
        assert not torch.allclose(biased(images), plain(images))


def test_rel_pos_bias_is_added_to_attention_logits():
    model = _randomize(_tiny(rel_pos_bias=True)).eval()
    attn = model.blocks[0].attn
    tokens = torch.randn(1, 1 + 16, model.embed_dim)
    q, k, v = attn.qkv(tokens).reshape(1, 17, 3, 3, 64).permute(2, 0, 3, 1, 4)
    table, index = attn.relative_position_bias_table, attn.relative_position_index
    bias = table[index.reshape(-1)].reshape(17, 17, 3).permute(2, 0, 1)
    logits = q @ k.transpose(-2, -1) / math.sqrt(64) + bias
    expected = attn.proj((logits.softmax(-1) @ v).transpose(1, 2).reshape(1, 17, -1))
    with torch.no_grad():
        torch.testing.assert_close(attn(tokens, (4, 4)), expected.detach(), atol=1e-5, rtol=1e-5)


def test_window_partition_round_trip_with_padding():
    x = torch.randn(2, 5, 7, 8)
    windows, padded = window_partition(x, 3)
    assert windows.shape == (2 * 2 * 3, 9, 8) and padded == (6, 9)
    torch.testing.assert_close(window_unpartition(windows, 3, padded, (5, 7)), x)


def test_window_model_shapes_and_every_parameter_gets_a_gradient():
    model = build_vit(
        "vit_tiny_patch16", depth=4, img_size=64, window={"size": 3, "global_blocks": [1, 3]}, out_indices=[1, 3]
    )
    _randomize(model, std=0.02)
    images = torch.randn(2, 3, 80, 112)  # 5x7 grid, padded to 6x9 in windowed blocks
    maps = model.forward_maps(images)
    assert [m.shape for m in maps] == [(2, 192, 5, 7)] * 2
    assert model.forward_features(images).shape == (2, 35, 192)
    sum(m.square().mean() for m in maps).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None and not n.startswith(("norm.", "cls_token"))]
    assert no_grad == []
    assert model.blocks[0].attn.rel_pos_h.shape == (5, 64)  # window 3
    assert model.blocks[1].attn.rel_pos_h.shape == (7, 64)  # global block: 4x4 grid of 64 px input
    assert model.blocks[0].attn.rel_pos_h.grad.abs().sum() > 0


def test_decomposed_rel_pos_matches_explicit_offsets():
    q = torch.randn(1, 2, 6, 4)
    rel_h, rel_w = torch.randn(3, 4), torch.randn(5, 4)
    bias = decomposed_rel_pos_bias(q, rel_h, rel_w, (2, 3)).reshape(1, 2, 2, 3, 2, 3)
    qg = q.reshape(1, 2, 2, 3, 4)
    for (i, j, m, n) in [(0, 0, 1, 2), (1, 2, 0, 0), (1, 1, 1, 1)]:
        expected = qg[0, :, i, j] @ rel_h[i - m + 1] + qg[0, :, i, j] @ rel_w[j - n + 2]
        torch.testing.assert_close(bias[0, :, i, j, m, n], expected)


def test_forward_maps_taps_blocks_in_order_and_drop_cls():
    model = _tiny(out_indices=(3, 1)).eval()
    images = torch.randn(1, 3, 64, 96)
    maps = model.forward_maps(images)
    assert [m.shape for m in maps] == [(1, 192, 4, 6)] * 2
    tokens, grid = model._embed(images)
    for block in model.blocks[:2]:
        tokens = block(tokens, grid)
    torch.testing.assert_close(maps[0], tokens[:, 1:].transpose(1, 2).reshape(1, 192, 4, 6))


def test_grad_checkpointing_gives_identical_gradients():
    reference = _randomize(_tiny(drop_path_rate=0.0))
    checkpointed = _tiny(grad_checkpointing=True)
    checkpointed.load_state_dict(reference.state_dict())
    images = torch.randn(2, 3, 64, 64)
    for model in (reference, checkpointed):
        model(images).sum().backward()
    for (name, a), (_, b) in zip(reference.named_parameters(), checkpointed.named_parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


def test_no_weight_decay_names_and_layer_count():
    model = _tiny(rel_pos_bias=True)
    names = model.no_weight_decay()
    assert {"pos_embed", "cls_token", "blocks.3.attn.relative_position_bias_table"} <= names
    assert model.num_layers == 5
