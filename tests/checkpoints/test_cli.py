"""`mae-transfer inspect` and `mae-transfer convert`."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from checkpoint_cases import ARCH, CASES, save
from mae_transfer.checkpoints import cli as checkpoint_cli
from mae_transfer.checkpoints import load_pretrained
from mae_transfer.cli import main
from mae_transfer.models import build_vit

REPO = Path(__file__).resolve().parents[2]


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    checkpoint_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.mark.parametrize("name", ["mae_full", "mmpretrain", "beit_shared", "timm_safetensors"])
def test_inspect_json_reports_format_and_arch(name: str, tmp_path: Path, capsys) -> None:
    case = CASES[name]()
    assert _run(["inspect", str(save(case, tmp_path)), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True and data["error"] is None
    assert data["format"] == case.format and data["arch"] == ARCH
    assert data["model"]["arch"] == ARCH
    assert {d["key"] for d in data["load"]["unexpected"]} == case.dropped
    assert set(data["load"]["matched"]) == set(case.expected)


def test_inspect_with_the_wrong_arch_fails(tmp_path: Path, capsys) -> None:
    path = save(CASES["mae"](), tmp_path)
    assert _run(["inspect", str(path), "--arch", "vit_small_patch16", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["format"] == "mae" and data["arch"] == ARCH
    assert "wrong architecture" in data["error"] and "vit_small_patch16" in data["error"]


def test_inspect_text_file_fails_with_the_reason(tmp_path: Path, capsys) -> None:
    path = tmp_path / "readme.pth"
    path.write_text("hello")
    assert _run(["inspect", str(path)]) == 1
    err = capsys.readouterr().err
    assert str(path) in err and "not a checkpoint" in err


def test_inspect_human_readable(tmp_path: Path, capsys) -> None:
    assert _run(["inspect", str(save(CASES["mocov3"](), tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "format:     mocov3" in out and "MoCo v3 momentum encoder" in out


def test_convert_writes_a_weights_only_canonical_checkpoint(tmp_path: Path, capsys) -> None:
    case = CASES["mmpretrain"]()
    out = tmp_path / "canonical.pth"
    assert _run(["convert", str(save(case, tmp_path)), str(out)]) == 0
    written = torch.load(out, weights_only=True)
    assert written["mae_transfer"]["format"] == "canonical"
    assert written["mae_transfer"]["source_format"] == "mmpretrain"
    assert written["mae_transfer"]["arch"] == ARCH
    assert set(written["model"]) == set(case.expected)
    assert all(torch.equal(written["model"][k], v) for k, v in case.expected.items())
    model = build_vit(ARCH)
    report = load_pretrained(model, out)
    assert report.format == "canonical" and report.unexpected == [] and report.missing == []


def test_convert_beit_to_safetensors_keeps_what_the_network_used(tmp_path: Path) -> None:
    case = CASES["beit_shared"]()
    out = tmp_path / "beit.safetensors"
    assert _run(["convert", str(save(case, tmp_path)), str(out)]) == 0
    written = load_file(str(out))
    assert torch.count_nonzero(written["pos_embed"]) == 0
    assert all(torch.equal(written[k], v) for k, v in case.expected.items())
    model = build_vit(ARCH, layer_scale_init=0.1, rel_pos_bias=True)
    report = load_pretrained(model, out)
    assert report.format == "canonical" and report.missing == []


def test_convert_refuses_to_overwrite_without_force(tmp_path: Path, capsys) -> None:
    source = save(CASES["mae"](), tmp_path)
    out = tmp_path / "out.pth"
    out.write_text("keep me")
    assert _run(["convert", str(source), str(out)]) == 1
    assert out.read_text() == "keep me"
    assert "--force" in capsys.readouterr().err
    assert _run(["convert", str(source), str(out), "--force"]) == 0
    assert "model" in torch.load(out, weights_only=True)


def test_convert_of_a_bad_checkpoint_writes_nothing(tmp_path: Path) -> None:
    source = tmp_path / "bad.pth"
    torch.save({"model": {}}, source)
    out = tmp_path / "out.pth"
    assert _run(["convert", str(source), str(out)]) == 1
    assert not out.exists() and list(tmp_path.iterdir()) == [source]


def test_main_entry_point_inspect_json(tmp_path: Path, capsys) -> None:
    path = save(CASES["deit"](), tmp_path)
    assert main(["inspect", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["format"] == "deit_distilled" and data["arch"] == ARCH


def test_subprocess_inspect_and_main_convert(tmp_path: Path) -> None:
    path = save(CASES["mae_full"](), tmp_path)
    options = {"cwd": REPO, "capture_output": True, "text": True, "timeout": 300}
    command = [sys.executable, "-m", "mae_transfer.cli", "inspect", str(path), "--json"]
    inspected = subprocess.run(command, **options)
    assert inspected.returncode == 0, inspected.stderr
    data = json.loads(inspected.stdout)
    assert data["format"] == "mae_full" and data["arch"] == ARCH and data["ok"] is True
    out = tmp_path / "converted.safetensors"
    assert main(["convert", str(path), str(out)]) == 0
    assert "mask_token" not in load_file(str(out))
