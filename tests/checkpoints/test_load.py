"""`load_pretrained` refuses bad loads with a clear error and never leaves a partial model."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch

from checkpoint_cases import ARCH, CASES, DIM, save, timm_state
from mae_transfer.checkpoints import CheckpointError, load_pretrained
from mae_transfer.models import build_vit


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _unchanged(model: torch.nn.Module, before: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(model.state_dict()[k], v) for k, v in before.items())


def test_vit_large_checkpoint_into_vit_base() -> None:
    with torch.device("meta"):
        large = timm.create_model("vit_large_patch16_224", pretrained=False, num_classes=0)
    checkpoint = {"model": {k: torch.empty(v.shape) for k, v in large.state_dict().items()}}
    model = build_vit("vit_base_patch16")
    before = _snapshot(model)

    with pytest.raises(CheckpointError) as caught:
        load_pretrained(model, checkpoint)

    message = str(caught.value)
    assert "wrong architecture" in message
    assert "vit_large_patch16 (1024-d, 24 blocks, patch 16)" in message
    assert "vit_base_patch16 (768-d, 12 blocks, patch 16)" in message
    assert caught.value.key == "cls_token"
    assert caught.value.expected == (1, 1, 768) and caught.value.found == (1, 1, 1024)
    assert _unchanged(model, before)


def test_deeper_checkpoint_file_names_file_and_depths(tmp_path: Path) -> None:
    path = tmp_path / "deep.pth"
    torch.save({"model": timm_state(num_classes=0)}, path)
    model = build_vit(ARCH, depth=4)
    before = _snapshot(model)
    with pytest.raises(CheckpointError) as caught:
        load_pretrained(model, path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "12 blocks" in message and "4 blocks" in message
    assert caught.value.key.startswith("blocks.4.")
    assert _unchanged(model, before)


def test_unresizable_shape_mismatch_names_key_and_shapes() -> None:
    model = build_vit(ARCH, mlp_ratio=2.0)
    before = _snapshot(model)
    with pytest.raises(CheckpointError, match="shape mismatch") as caught:
        load_pretrained(model, {"model": timm_state(num_classes=0)})
    assert caught.value.key.endswith("mlp.fc1.weight")
    assert caught.value.expected == (2 * DIM, DIM) and caught.value.found == (4 * DIM, DIM)
    assert "expected (384, 192), found (768, 192)" in str(caught.value)
    assert _unchanged(model, before)


def test_too_little_matches(tmp_path: Path) -> None:
    sd = {k: v for k, v in timm_state(num_classes=0).items() if ".mlp." not in k}
    path = tmp_path / "no_mlp.pth"
    torch.save({"model": sd}, path)
    model = build_vit(ARCH)
    before = _snapshot(model)
    with pytest.raises(CheckpointError, match="too little of the model matches") as caught:
        load_pretrained(model, path)
    assert str(path) in str(caught.value) and ".mlp." in caught.value.key
    assert _unchanged(model, before)


def test_unknown_key_is_an_error_unless_ignored() -> None:
    sd = {**timm_state(num_classes=0), "adapter.weight": torch.ones(3)}
    with pytest.raises(CheckpointError, match="adapter.weight.*has no place in the model"):
        load_pretrained(build_vit(ARCH), {"model": sd})
    report = load_pretrained(build_vit(ARCH), {"model": sd}, ignore=["adapter.*"])
    dropped = [(d.key, d.reason) for d in report.unexpected]
    assert dropped == [("adapter.weight", "ignored by the caller")]


def test_missing_final_norm_needs_explicit_permission() -> None:
    sd = {k: v for k, v in timm_state(num_classes=0).items() if not k.startswith("norm.")}
    with pytest.raises(CheckpointError, match="too little") as caught:
        load_pretrained(build_vit(ARCH), {"model": sd})
    assert caught.value.key in ("norm.weight", "norm.bias")
    report = load_pretrained(build_vit(ARCH), {"model": sd}, allow_missing=["norm.*"])
    assert {m.key for m in report.missing} == {"norm.weight", "norm.bias"}


def test_trained_relative_bias_needs_a_model_with_it(tmp_path: Path) -> None:
    case = CASES["beit"]()
    path = save(case, tmp_path)
    model = build_vit(ARCH, layer_scale_init=0.1)
    before = _snapshot(model)
    with pytest.raises(CheckpointError, match="rel_pos_bias=True"):
        load_pretrained(model, path)
    assert _unchanged(model, before)


def test_all_zero_relative_bias_is_dropped_as_lossless() -> None:
    sd = timm_state(num_classes=0)
    sd["blocks.0.attn.relative_position_bias_table"] = torch.zeros(27 * 27 + 3, 3)
    report = load_pretrained(build_vit(ARCH), {"model": sd})
    reasons = {d.key: d.reason for d in report.unexpected}
    assert "no effect" in reasons["blocks.0.attn.relative_position_bias_table"]


def test_trained_layer_scale_needs_a_model_with_it() -> None:
    sd = timm_state(num_classes=0, init_values=0.1)
    with pytest.raises(CheckpointError, match="layer scale"):
        load_pretrained(build_vit(ARCH), {"model": sd})


def test_head_of_other_size_keeps_init_in_a_timm_model() -> None:
    """Any module with timm names loads; a 1000-class head does not go into a 10-class one."""
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=10)
    head_before = model.head.weight.detach().clone()
    sd = timm_state(num_classes=1000)
    report = load_pretrained(model, {"model": sd})
    assert {d.key for d in report.unexpected} == {"head.weight", "head.bias"}
    assert {m.key for m in report.missing} == {"head.weight", "head.bias"}
    assert torch.equal(model.head.weight, head_before)
    assert torch.equal(model.blocks[5].mlp.fc2.weight, sd["blocks.5.mlp.fc2.weight"])


def test_half_precision_checkpoint_is_cast_and_noted() -> None:
    sd = {k: v.half() for k, v in timm_state(num_classes=0).items()}
    model = build_vit(ARCH)
    report = load_pretrained(model, {"model": sd})
    assert model.cls_token.dtype == torch.float32
    assert torch.equal(model.cls_token, sd["cls_token"].float())
    assert any("float16 -> torch.float32" in note for note in report.notes)


def test_window_attention_model_keeps_zero_rel_pos() -> None:
    sd = timm_state(num_classes=0)
    model = build_vit(ARCH, img_size=256, window={"size": 4, "global_blocks": [2, 5, 8, 11]})
    report = load_pretrained(model, {"model": sd})
    missing = {m.key for m in report.missing}
    assert "blocks.0.attn.rel_pos_h" in missing and "blocks.11.attn.rel_pos_w" in missing
    assert [(r.key, r.to_shape) for r in report.resized] == [("pos_embed", (1, 1 + 16 * 16, DIM))]
    assert torch.count_nonzero(model.blocks[0].attn.rel_pos_h) == 0


def test_report_renders_and_serialises() -> None:
    case = CASES["mae_full"]()
    report = load_pretrained(build_vit(ARCH, img_size=320), case.checkpoint)
    text = report.render()
    assert "format:     mae_full" in text and "MAE pre-training decoder" in text
    assert "pos_embed: (1, 197, 192) -> (1, 401, 192)" in text
    data = report.to_dict()
    assert data["resized"] == [
        {"key": "pos_embed", "from_shape": [1, 197, 192], "to_shape": [1, 401, 192],
         "method": "bicubic, cls slot kept"}
    ]
    assert len(data["matched"]) == len(case.expected)
