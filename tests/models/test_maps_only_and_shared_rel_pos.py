"""maps_only backbones own only what their maps use; Li et al.'s shared relative position tables."""

from __future__ import annotations

import pytest
import torch

from mae_transfer.models import WindowConfig, build_vit
from mae_transfer.models.attention import relative_offset_index


def _grad_free(model: torch.nn.Module) -> list[str]:
    return [name for name, param in model.named_parameters() if param.grad is None]


def _randomize(model: torch.nn.Module, std: float = 0.05) -> torch.nn.Module:
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * std)
    return model


WINDOW = {"size": 2, "global_blocks": [1, 3]}
MODES = {
    "segmentation": {"rel_pos_bias": True, "out_indices": [0, 1, 2, 3]},
    "window_last_block": {"window": {**WINDOW, "rel_pos": "decomposed"}},
    "multi_level_shared": {"window": {**WINDOW, "rel_pos": "shared"}, "out_indices": [0, 1, 2, 3]},
    "taps_before_the_end": {"out_indices": [0, 1]},
}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_parameter_of_a_maps_only_backbone_gets_a_gradient(mode: str) -> None:
    model = build_vit("vit_tiny_patch16", depth=4, img_size=64, maps_only=True, **MODES[mode])
    maps = model.forward_maps(torch.randn(2, 3, 64, 96))
    sum(m.square().mean() for m in maps).backward()
    assert _grad_free(model) == []
    assert model.norm is None and "norm.weight" not in model.state_dict()


def test_the_same_options_without_maps_only_leave_parameters_without_gradient() -> None:
    model = build_vit("vit_tiny_patch16", depth=4, img_size=64, window={**WINDOW}, out_indices=[1, 3])
    sum(m.sum() for m in model.forward_maps(torch.randn(1, 3, 64, 64))).backward()
    assert _grad_free(model) == ["norm.weight", "norm.bias"]


def test_window_attention_has_no_cls_token_and_pos_embed_keeps_its_slot() -> None:
    model = build_vit("vit_tiny_patch16", depth=4, img_size=64, window={**WINDOW})
    assert model.cls_token is None and "cls_token" not in model.state_dict()
    assert model.pos_embed.shape == (1, 1 + 16, 192)
    assert model.forward_features(torch.randn(1, 3, 64, 64)).shape == (1, 16, 192)
    assert "cls_token" not in model.no_weight_decay()


def test_maps_only_builds_blocks_up_to_the_last_tap_and_keeps_layer_ids() -> None:
    model = build_vit("vit_tiny_patch16", depth=12, img_size=64, out_indices=[3, 5], maps_only=True, drop_path_rate=0.1)
    full = build_vit("vit_tiny_patch16", depth=12, img_size=64, drop_path_rate=0.1)
    assert len(model.blocks) == 6 and model.depth == 12 and model.num_layers == 13
    rates = [getattr(b.drop_path1, "drop_prob", 0.0) for b in model.blocks]
    assert rates == [getattr(b.drop_path1, "drop_prob", 0.0) for b in full.blocks[:6]]
    assert rates[5] == pytest.approx(0.1 * 5 / 11)  # the rates of the 12-block schedule
    with pytest.raises(RuntimeError, match="maps_only=True.*forward_maps"):
        model.forward_features(torch.randn(1, 3, 64, 64))
    assert dict(model.omitted_keys())["blocks.6.*"] == "block 6 is after the last tapped block 5"


def test_maps_only_maps_equal_the_full_model_maps() -> None:
    full = _randomize(build_vit("vit_tiny_patch16", depth=4, img_size=64, out_indices=[1, 2])).eval()
    lean = build_vit("vit_tiny_patch16", depth=4, img_size=64, out_indices=[1, 2], maps_only=True).eval()
    missing, unexpected = lean.load_state_dict(full.state_dict(), strict=False)
    assert missing == [] and sorted(unexpected) == ["blocks.3." + k for k in sorted(full.blocks[3].state_dict())] + [
        "norm.bias", "norm.weight"]
    images = torch.randn(2, 3, 64, 80)
    with torch.no_grad():
        for a, b in zip(full.forward_maps(images), lean.forward_maps(images)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_shared_tables_are_one_parameter_per_kind_of_block() -> None:
    model = build_vit(
        "vit_tiny_patch16", depth=4, img_size=64, window={**WINDOW, "rel_pos": "shared", "global_grid": 8}
    )
    tables = {n: tuple(p.shape) for n, p in model.named_parameters() if "relative_position" in n or "rel_pos" in n}
    assert tables == {
        "shared_rel_pos.global.relative_position_bias_table": (15 * 15, 3),
        "shared_rel_pos.window.relative_position_bias_table": (3 * 3, 3),
    }
    assert all(torch.count_nonzero(p) == 0 for n, p in model.named_parameters() if n.startswith("shared_rel_pos"))
    assert {"shared_rel_pos.global.relative_position_bias_table"} <= model.no_weight_decay()


def test_shared_window_bias_is_added_in_every_windowed_block() -> None:
    """A windowed block with the shared table equals explicit attention with its bias added."""
    model = _randomize(build_vit("vit_tiny_patch16", depth=2, img_size=32, window={
        "size": 2, "global_blocks": [1], "rel_pos": "shared"})).eval()
    block, table = model.blocks[0], model.shared_rel_pos["window"].relative_position_bias_table
    tokens = torch.randn(1, 4, 192)  # one 2x2 window
    bias = table[relative_offset_index((2, 2)).reshape(-1)].reshape(4, 4, 3).permute(2, 0, 1)
    q, k, v = block.attn.qkv(tokens).reshape(1, 4, 3, 3, 64).permute(2, 0, 3, 1, 4)
    logits = q @ k.transpose(-2, -1) / 8.0 + bias
    expected = block.attn.proj((logits.softmax(-1) @ v).transpose(1, 2).reshape(1, 4, 192))
    with torch.no_grad():
        torch.testing.assert_close(block.attn(tokens, (2, 2), bias), expected, atol=1e-5, rtol=1e-5)
        biases = model._block_biases((2, 2))
        assert biases[0] is not None and torch.equal(biases[0], model.shared_rel_pos["window"]((2, 2)))
        assert torch.equal(biases[1], model.shared_rel_pos["global"]((2, 2)))


def test_shared_global_table_is_resized_for_another_grid() -> None:
    model = build_vit("vit_tiny_patch16", depth=2, img_size=32, window={
        "size": 2, "global_blocks": [1], "rel_pos": "shared", "global_grid": 4})
    with torch.no_grad():
        model.shared_rel_pos["global"].relative_position_bias_table.normal_()
    assert model.shared_rel_pos["global"]((4, 4)).shape == (3, 16, 16)
    assert model.shared_rel_pos["global"]((3, 5)).shape == (3, 15, 15)
    assert model.forward_features(torch.randn(1, 3, 48, 80)).shape == (1, 15, 192)


def test_global_blocks_hold_tables_for_their_run_grid() -> None:
    model = build_vit("vit_base_patch16", depth=4, window={"size": 14, "global_blocks": [1, 3], "global_grid": 64})
    assert model.blocks[0].attn.rel_pos_h.shape == (27, 64)
    assert model.blocks[1].attn.rel_pos_h.shape == (127, 64) and model.blocks[3].attn.rel_pos_w.shape == (127, 64)
    default = build_vit("vit_tiny_patch16", depth=2, window={"size": 14, "global_blocks": [1]})
    assert default.blocks[1].attn.rel_pos_h.shape == (27, 64)  # no global_grid: the 224 grid


@pytest.mark.parametrize(
    "window, message",
    [
        ({"rel_pos": "relative"}, "window.rel_pos"),
        ({"size": 0}, "window.size"),
        ({"global_grid": 0}, "window.global_grid"),
        ({"grid": 64}, "unknown key"),
    ],
)
def test_window_options_are_validated(window: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WindowConfig.parse(window)


def test_rel_pos_true_and_false_keep_their_meaning() -> None:
    assert WindowConfig(rel_pos=True).rel_pos == "decomposed" and WindowConfig(rel_pos=False).rel_pos is None
    assert WindowConfig(global_grid=64).global_grid == (64, 64)
