"""A checkpoint with a NaN or inf weight is refused (issue 12 item 1): the load names the file
and key and leaves the model untouched; ``inspect`` and ``convert`` report it and exit 1."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

from checkpoint_cases import ARCH, timm_state
from mae_transfer.checkpoints import CheckpointError, load_pretrained
from mae_transfer.checkpoints import cli as checkpoint_cli
from mae_transfer.models import build_vit


def _poisoned(tmp_path: Path, **values: float) -> Path:
    """An official-MAE-format file whose named tensors hold one bad value each."""
    state = timm_state(num_classes=0)
    for key, value in values.items():
        tensor = state[key].clone()
        tensor.view(-1)[3] = value
        state[key] = tensor
    path = tmp_path / "poisoned.pth"
    torch.save({"model": state}, path)
    return path


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    checkpoint_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_nan_weight_refuses_the_load_and_names_file_and_key(tmp_path: Path) -> None:
    path = _poisoned(tmp_path, **{"blocks.2.attn.qkv.weight": float("nan")})
    model = build_vit(ARCH)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError) as caught:
        load_pretrained(model, path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "non-finite" in message
    assert "'blocks.2.attn.qkv.weight' (1 NaN, 0 inf)" in message
    assert caught.value.key == "blocks.2.attn.qkv.weight"
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())


def test_inf_weights_are_all_counted(tmp_path: Path) -> None:
    path = _poisoned(tmp_path, **{"norm.bias": float("inf"), "pos_embed": float("-inf")})
    with pytest.raises(CheckpointError, match=r"2 tensor\(s\)") as caught:
        load_pretrained(build_vit(ARCH), path)
    assert "'norm.bias' (0 NaN, 1 inf)" in str(caught.value) and "'pos_embed' (0 NaN, 1 inf)" in str(caught.value)


def test_finite_checkpoint_still_loads(tmp_path: Path) -> None:
    path = _poisoned(tmp_path)
    assert len(load_pretrained(build_vit(ARCH), path).matched) > 0


def test_inspect_reports_non_finite_tensors_and_exits_1(tmp_path: Path, capsys) -> None:
    path = _poisoned(tmp_path, **{"blocks.0.mlp.fc1.bias": float("nan")})
    assert _run(["inspect", str(path), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and "non-finite" in data["error"]
    assert data["non_finite"] == [{"key": "blocks.0.mlp.fc1.bias", "nan": 1, "inf": 0}]
    assert _run(["inspect", str(path)]) == 1
    assert "NON-FINITE: blocks.0.mlp.fc1.bias: 1 NaN, 0 inf" in capsys.readouterr().err


def test_convert_refuses_non_finite_tensors(tmp_path: Path) -> None:
    path = _poisoned(tmp_path, **{"cls_token": float("nan")})
    out = tmp_path / "out.pth"
    assert _run(["convert", str(path), str(out)]) == 1
    assert not out.exists()
