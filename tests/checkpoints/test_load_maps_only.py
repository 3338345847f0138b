"""Loading into backbones that leave parts out: each such checkpoint key is dropped with its reason.

A maps-only backbone (detection, segmentation) has no final norm and no block after its last
tap; under window attention there is no cls token. Every supported format still loads, those
keys are reported as dropped with the model's reason, and unknown keys are still refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from checkpoint_cases import ARCH, CASES, HEADS, Case, save, timm_state
from mae_transfer.checkpoints import CheckpointError, load_pretrained
from mae_transfer.models import build_vit

NORM = "final norm unused: the backbone returns block maps"
CLS = "window attention uses no cls token"
WINDOW = {"size": 7, "global_blocks": [2, 5, 8, 11]}


def _check(case: Case, path: Path, model: torch.nn.Module, omitted: dict[str, str]) -> None:
    """Everything the model owns loads as in the plain case; ``omitted`` canonical keys are dropped."""
    report = load_pretrained(model, path)
    reasons = {d.key: d.reason for d in report.unexpected}
    omitted_reasons = sorted(r for r in reasons.values() if r in set(omitted.values()) or "after the last tapped" in r)
    expected_omitted = sorted(omitted[k] for k in case.expected if k in omitted)
    assert omitted_reasons == expected_omitted
    assert {k for k, r in reasons.items() if r not in omitted_reasons} == case.dropped
    state = model.state_dict()
    assert set(report.matched) == set(case.expected) - set(omitted)
    assert {m.key for m in report.missing} == case.missing & set(state)
    for key in report.matched:
        assert torch.equal(state[key], case.expected[key]), key


def test_segmentation_backbone_drops_the_final_norm(case: Case, tmp_path: Path) -> None:
    model = build_vit(ARCH, maps_only=True, out_indices=(3, 5, 7, 11), **case.overrides)
    _check(case, save(case, tmp_path), model, {"norm.weight": NORM, "norm.bias": NORM})


@pytest.mark.parametrize("name", sorted(n for n in CASES if not CASES[n]().overrides))
def test_window_backbone_drops_cls_token_and_final_norm(name: str, tmp_path: Path) -> None:
    case = CASES[name]()
    model = build_vit(ARCH, img_size=112, maps_only=True, window=WINDOW)
    report = load_pretrained(model, save(case, tmp_path))
    reasons = {d.key: d.reason for d in report.unexpected}
    assert sorted(r for r in reasons.values() if r in (CLS, NORM)) == sorted(
        [CLS] * ("cls_token" in case.expected) + [NORM] * sum(k.startswith("norm.") for k in case.expected)
    )
    assert set(report.matched) == set(case.expected) - {"cls_token", "norm.weight", "norm.bias"}


def test_blocks_after_the_last_tap_are_dropped_with_their_index() -> None:
    sd = timm_state(num_classes=0)
    model = build_vit(ARCH, maps_only=True, out_indices=(3, 5))
    report = load_pretrained(model, {"model": sd})
    reasons = {d.key: d.reason for d in report.unexpected}
    assert reasons["blocks.6.attn.qkv.weight"] == "block 6 is after the last tapped block 5"
    assert reasons["blocks.11.mlp.fc2.bias"] == "block 11 is after the last tapped block 5"
    assert reasons["norm.weight"] == NORM
    assert not any(key.startswith("blocks.5.") for key in reasons)
    assert torch.equal(model.blocks[5].mlp.fc2.weight, sd["blocks.5.mlp.fc2.weight"])


def test_unknown_keys_are_still_refused() -> None:
    sd = {**timm_state(num_classes=0), "adapter.weight": torch.ones(3)}
    model = build_vit(ARCH, maps_only=True, window=WINDOW, out_indices=(5,))
    with pytest.raises(CheckpointError, match="adapter.weight.*has no place in the model"):
        load_pretrained(model, {"model": sd})


def test_a_deeper_checkpoint_is_still_a_wrong_architecture() -> None:
    sd = timm_state(num_classes=0)
    model = build_vit(ARCH, depth=4, maps_only=True, out_indices=(1, 3))
    with pytest.raises(CheckpointError, match="wrong architecture"):
        load_pretrained(model, {"model": sd})


def test_vitdet_global_tables_are_resized_to_the_run_grid() -> None:
    """A ViTDet checkpoint whose global tables are sized for the 224 grid (27 rows) loads into
    blocks sized for a 1024 input (global_grid 64: 127 rows) by linear interpolation."""
    source = build_vit(ARCH, window={"size": 14, "global_blocks": [2, 5, 8, 11]})
    with torch.no_grad():
        source.blocks[2].attn.rel_pos_h.normal_()
    target = build_vit(ARCH, maps_only=True, window={"size": 14, "global_blocks": [2, 5, 8, 11], "global_grid": 64})
    report = load_pretrained(target, {"model": source.state_dict()})
    resized = {r.key: (r.from_shape, r.to_shape) for r in report.resized}
    assert resized["blocks.2.attn.rel_pos_h"] == ((27, 64), (127, 64))
    assert "blocks.0.attn.rel_pos_h" not in resized  # windowed blocks: 27 rows in both
    assert target.blocks[2].attn.rel_pos_h.abs().sum() > 0


def test_shared_tables_load_resize_and_refuse() -> None:
    window = {"size": 7, "global_blocks": [2, 5, 8, 11], "rel_pos": "shared"}
    source = build_vit(ARCH, maps_only=True, window={**window, "global_grid": 8})
    with torch.no_grad():
        for param in source.shared_rel_pos.parameters():
            param.normal_()
    state = {**timm_state(num_classes=0), **source.state_dict()}
    target = build_vit(ARCH, maps_only=True, window={**window, "global_grid": 16})
    report = load_pretrained(target, {"model": state})
    resized = {r.key: (r.from_shape, r.to_shape) for r in report.resized}
    assert resized["shared_rel_pos.global.relative_position_bias_table"] == ((15 * 15, HEADS), (31 * 31, HEADS))
    assert torch.equal(target.shared_rel_pos["window"].relative_position_bias_table,
                       state["shared_rel_pos.window.relative_position_bias_table"])
    fresh = build_vit(ARCH, maps_only=True, window=window)
    missing = {m.key for m in load_pretrained(fresh, {"model": timm_state(num_classes=0)}).missing}
    assert missing == {f"shared_rel_pos.{k}.relative_position_bias_table" for k in ("global", "window")}
    with pytest.raises(CheckpointError, match="rel_pos='shared'"):
        load_pretrained(build_vit(ARCH, maps_only=True, window=WINDOW), {"model": state})
