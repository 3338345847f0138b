"""Official-format checkpoints: layout, weights-only safety, inspect, load_pretrained, continuation, errors."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pretrain_helpers import REPO, official_mae_shapes, state_shapes, tiny_mae

from mae_transfer.checkpoints import CheckpointError, load_pretrained
from mae_transfer.models import build_vit
from mae_transfer.pretrain import (
    build_from_checkpoint,
    load_official_checkpoint,
    pretrain_checkpoint_path,
    read_official_checkpoint,
    save_official_checkpoint,
)
from mae_transfer.pretrain.checkpoint import FRESH_SCALER_STATE, load_optimizer_state
from mae_transfer.pretrain.optim import official_param_groups

ARGS = {"model": "mae_vit_tiny_patch16", "input_size": 64, "mask_ratio": 0.75, "norm_pix_loss": True, "epochs": 4}


def _trained_step(model) -> torch.optim.Optimizer:
    optimizer = torch.optim.AdamW(official_param_groups(model, 0.05), lr=1e-3, betas=(0.9, 0.95))
    model(torch.randn(2, 3, 64, 64)).loss.backward()
    optimizer.step()
    return optimizer


@pytest.fixture()
def written(tmp_path: Path) -> tuple[Path, torch.nn.Module, torch.optim.Optimizer]:
    model = tiny_mae(norm_pix_loss=True)
    optimizer = _trained_step(model)
    path = save_official_checkpoint(pretrain_checkpoint_path(tmp_path, 4), model, epoch=3, args=ARGS,
                                    optimizer_state=optimizer.state_dict())
    return path, model, optimizer


def test_checkpoint_path_follows_the_official_epoch_index(tmp_path: Path) -> None:
    assert pretrain_checkpoint_path(tmp_path, 800) == tmp_path / "checkpoint-799.pth"
    with pytest.raises(ValueError, match="epochs: expected a positive number of finished epochs, got 0"):
        pretrain_checkpoint_path(tmp_path, 0)


def test_written_checkpoint_has_the_official_keys_and_loads_weights_only(written) -> None:
    path, model, _ = written
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert list(raw) == ["model", "optimizer", "epoch", "scaler", "args"]
    assert raw["epoch"] == 3 and raw["args"] == ARGS
    assert raw["scaler"] == FRESH_SCALER_STATE  # no loss scaling ran: a fresh GradScaler's state
    assert state_shapes(raw["model"]) == official_mae_shapes(192, 2, 16, 4, 64, 1)
    assert all(torch.equal(raw["model"][k], v) for k, v in model.state_dict().items())
    no_decay, decay = raw["optimizer"]["param_groups"]  # official add_weight_decay layout
    assert (no_decay["weight_decay"], decay["weight_decay"]) == (0.0, 0.05)


def test_args_must_be_plain_values(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"args.ns: Namespace is not weights_only-safe"):
        save_official_checkpoint(tmp_path / "c.pth", tiny_mae(), epoch=0, args={"ns": argparse.Namespace(a=1)})


def test_official_groups_decay_tokens_and_matrices_but_not_biases_norms_or_fixed_tables() -> None:
    model = tiny_mae()
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay, decay = ([names[id(p)] for p in group["params"]] for group in official_param_groups(model, 0.05))
    assert {"cls_token", "mask_token", "decoder_embed.weight", "blocks.0.attn.qkv.weight"} <= set(decay)
    assert {"norm.weight", "decoder_norm.bias", "blocks.1.mlp.fc2.bias", "patch_embed.proj.bias"} <= set(no_decay)
    assert all(n.endswith(".bias") or (n.endswith(".weight") and "norm" in n) for n in no_decay)
    assert "pos_embed" not in decay + no_decay and "decoder_pos_embed" not in decay + no_decay
    assert [names[id(p)] for p in model.parameters() if p.requires_grad] == [
        n for n, _ in model.named_parameters() if n in set(decay + no_decay)
    ]


def test_inspect_reads_it_as_official_mae_with_decoder(written) -> None:
    path, _, _ = written
    result = subprocess.run([sys.executable, "-m", "mae_transfer.cli", "inspect", str(path), "--json"], cwd=REPO,
                            capture_output=True, text=True, check=True)
    summary = json.loads(result.stdout)
    assert summary["ok"] and summary["format"] == "mae_full"
    assert summary["shape"] == {"embed_dim": 192, "depth": 2, "patch_size": 16, "num_heads": None}
    dropped = {entry["key"]: entry["reason"] for entry in summary["load"]["unexpected"]}
    assert set(dropped) == {k for k in official_mae_shapes(192, 2, 16, 4, 64, 1) if k.startswith(("decoder_", "mask"))}
    assert set(dropped.values()) == {"MAE pre-training decoder"}
    assert summary["load"]["missing"] == []


def test_load_pretrained_puts_the_encoder_into_a_transfer_backbone(written) -> None:
    path, model, _ = written
    backbone = build_vit("vit_tiny_patch16", img_size=64, depth=2)
    report = load_pretrained(backbone, path)
    assert report.format == "mae_full" and report.missing == []
    for name, tensor in backbone.state_dict().items():
        assert torch.equal(tensor, model.state_dict()[name]), name


def test_an_official_file_with_a_pickled_namespace_is_read_and_rebuilt(tmp_path: Path) -> None:
    model = tiny_mae()
    path = tmp_path / "mae_visualize_tiny.pth"
    torch.save({"model": model.state_dict(), "args": argparse.Namespace(norm_pix_loss=True, lr=1.0)}, path)
    checkpoint = read_official_checkpoint(path)
    assert checkpoint.args == {} and "not read" in checkpoint.notes[0]
    rebuilt, _ = build_from_checkpoint(path)
    assert rebuilt.decoder_config.embed_dim == 64 and rebuilt.decoder_config.depth == 1 and not rebuilt.norm_pix_loss
    assert all(torch.equal(rebuilt.state_dict()[k], v) for k, v in model.state_dict().items())


def test_continuing_loads_weights_and_the_optimizer_state(written) -> None:
    path, model, optimizer = written
    fresh = tiny_mae(norm_pix_loss=True)
    torch.nn.init.zeros_(fresh.decoder_pred.weight)
    checkpoint = load_official_checkpoint(fresh, path)
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in model.state_dict().items())
    new_optimizer = torch.optim.AdamW(official_param_groups(fresh, 0.05), lr=5.0, betas=(0.9, 0.95))
    for group in new_optimizer.param_groups:
        group["initial_lr"] = 5.0
    load_optimizer_state(new_optimizer, checkpoint.optimizer, str(path))
    saved = optimizer.state_dict()
    for index, state in new_optimizer.state_dict()["state"].items():
        assert torch.equal(state["exp_avg"], saved["state"][index]["exp_avg"])
    assert all(group["initial_lr"] == 5.0 and group["lr"] == 1e-3 for group in new_optimizer.param_groups)


def test_a_decoder_of_another_width_is_refused_naming_the_key(written) -> None:
    path, _, _ = written
    other = tiny_mae(decoder=dict(embed_dim=128, depth=1, num_heads=4))
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"decoder width 64 differs from the model's decoder.embed_dim 128.*"
                                              r"key 'decoder_embed.weight': expected \(128, 192\), found \(64, 192\)"):
        load_official_checkpoint(other, path)
    assert all(torch.equal(before[k], v) for k, v in other.state_dict().items())  # untouched


def test_a_decoder_of_another_depth_or_no_decoder_is_refused(written, tmp_path: Path) -> None:
    path, model, _ = written
    with pytest.raises(CheckpointError, match=r"1 decoder blocks in the checkpoint, the model's decoder.depth is 2"):
        load_official_checkpoint(tiny_mae(decoder=dict(embed_dim=64, depth=2, num_heads=4)), path)
    encoder_only = tmp_path / "mae_pretrain_tiny.pth"
    torch.save({"model": {k: v for k, v in model.state_dict().items() if not k.startswith(("decoder", "mask"))}},
               encoder_only)
    with pytest.raises(CheckpointError, match="no MAE decoder in the checkpoint"):
        load_official_checkpoint(tiny_mae(), encoder_only)


def test_optimizer_state_of_another_layout_is_refused(written) -> None:
    path, _, _ = written
    checkpoint = read_official_checkpoint(path)
    single = torch.optim.AdamW(tiny_mae().parameters(), lr=1e-3)
    with pytest.raises(CheckpointError, match=r"optimizer groups hold \[\d+, \d+\] parameters"):
        load_optimizer_state(single, checkpoint.optimizer, str(path))


def test_model_config_refuses_a_pos_embed_that_is_not_cls_plus_square_grid() -> None:
    from mae_transfer.pretrain.checkpoint import OfficialCheckpoint, model_config_from_checkpoint

    state = tiny_mae().state_dict()
    state["pos_embed"] = state["pos_embed"][:, :-1]  # 1 + 15 tokens
    with pytest.raises(CheckpointError, match="pos_embed has 16 tokens, not a cls slot plus a square grid"):
        model_config_from_checkpoint(OfficialCheckpoint(source="x.pth", model=state))
