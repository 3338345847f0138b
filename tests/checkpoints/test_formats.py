"""Every supported checkpoint format loads into `build_vit` with every encoder key matched."""

from __future__ import annotations

from pathlib import Path

import torch

from checkpoint_cases import ARCH, Case, save
from mae_transfer.checkpoints import detect_format, load_pretrained, read_checkpoint
from mae_transfer.models import build_vit


def test_format_loads_every_encoder_key(case: Case, tmp_path: Path) -> None:
    path = save(case, tmp_path)
    assert detect_format(read_checkpoint(path)).format == case.format
    model = build_vit(ARCH, **case.overrides)
    report = load_pretrained(model, path)

    assert report.source == str(path)
    assert report.format == case.format
    assert report.arch == ARCH and report.model_arch == ARCH
    model_keys = set(model.state_dict())
    assert set(report.matched) == set(case.expected) & model_keys
    assert set(report.matched) | {m.key for m in report.missing} == model_keys
    assert {m.key for m in report.missing} == case.missing
    assert {d.key for d in report.unexpected} == case.dropped
    assert all(d.reason for d in report.unexpected)
    assert report.resized == []
    state = model.state_dict()
    for key, tensor in case.expected.items():
        assert torch.equal(state[key], tensor), key


def test_same_weights_from_every_format(tmp_path: Path) -> None:
    """One timm state dict saved in three namings gives bit-identical models."""
    from checkpoint_cases import CASES

    states = []
    for name in ("mae", "mmpretrain", "mocov3"):
        model = build_vit(ARCH)
        load_pretrained(model, save(CASES[name](), tmp_path))
        states.append(model.state_dict())
    for other in states[1:]:
        assert all(torch.equal(states[0][k], other[k]) for k in states[0])


def test_beit_merges_q_and_v_bias_with_zero_k_bias(tmp_path: Path) -> None:
    from checkpoint_cases import CASES, DIM

    case = CASES["beit"]()
    model = build_vit(ARCH, **case.overrides)
    report = load_pretrained(model, save(case, tmp_path))
    bias = model.blocks[3].attn.qkv.bias.detach()
    stored = case.checkpoint["model"]
    assert torch.equal(bias[:DIM], stored["blocks.3.attn.q_bias"])
    assert torch.count_nonzero(bias[DIM : 2 * DIM]) == 0
    assert torch.equal(bias[2 * DIM :], stored["blocks.3.attn.v_bias"])
    assert torch.equal(model.blocks[3].ls2.gamma.detach(), stored["blocks.3.gamma_2"])
    assert torch.count_nonzero(model.pos_embed) == 0
    assert any("q_bias" in note for note in report.notes)


def test_deit_pos_embed_loses_its_distillation_slot(tmp_path: Path) -> None:
    from checkpoint_cases import CASES

    case = CASES["deit"]()
    model = build_vit(ARCH)
    report = load_pretrained(model, save(case, tmp_path))
    stored = case.checkpoint["model"]["pos_embed"]
    assert stored.shape[1] == 2 + 196
    assert torch.equal(model.pos_embed.detach(), torch.cat([stored[:, :1], stored[:, 2:]], 1))
    assert any("distillation" in note for note in report.notes)
    reasons = {d.key: d.reason for d in report.unexpected}
    assert "distillation" in reasons["dist_token"] and "head" in reasons["head.weight"]


def test_in_memory_source_matches_file_source(mae_checkpoint: tuple[Path, dict]) -> None:
    path, expected = mae_checkpoint
    from_file, from_dict = build_vit(ARCH), build_vit(ARCH)
    report_file = load_pretrained(from_file, path)
    report_dict = load_pretrained(from_dict, torch.load(path, weights_only=True))
    assert report_dict.source == "<in-memory dict>"
    assert report_dict.matched == report_file.matched
    assert all(torch.equal(from_dict.state_dict()[k], v) for k, v in expected.items())
