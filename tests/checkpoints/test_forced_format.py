"""A forced checkpoint format (``backbones[].format`` / ``pretrained_format``) is required of the file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mae_transfer.checkpoints import CheckpointError, load_pretrained
from mae_transfer.checkpoints.formats import FORMATS, forced_format
from mae_transfer.matrix.plan.backbones import write_generated_checkpoint
from mae_transfer.models import build_vit


@pytest.fixture(scope="module")
def mae_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated MAE-format ({'model': sd}) vit_tiny checkpoint with 2 blocks."""
    return write_generated_checkpoint("vit_tiny_patch16", tmp_path_factory.mktemp("ckpt") / "tiny.pth", depth=2)


@pytest.mark.parametrize("fmt", [None, "auto", "mae"])
def test_the_right_or_no_forced_format_loads(mae_file: Path, fmt: str | None) -> None:
    model = build_vit("vit_tiny_patch16", depth=2)
    report = load_pretrained(model, str(mae_file), fmt=fmt)
    assert report.format == "mae" and not report.missing
    expected = torch.load(mae_file, weights_only=True)["model"]["blocks.1.mlp.fc2.weight"]
    assert torch.equal(model.state_dict()["blocks.1.mlp.fc2.weight"], expected)


def test_a_wrong_forced_format_is_refused_naming_the_file_and_both_formats(mae_file: Path) -> None:
    model = build_vit("vit_tiny_patch16", depth=2)
    before = model.state_dict()["blocks.0.attn.qkv.weight"].clone()
    with pytest.raises(CheckpointError) as caught:
        load_pretrained(model, str(mae_file), fmt="beit")
    message = str(caught.value)
    assert str(mae_file) in message and "'beit'" in message and "is 'mae'" in message
    assert caught.value.expected == "beit" and caught.value.found == "mae"
    assert torch.equal(model.state_dict()["blocks.0.attn.qkv.weight"], before)  # nothing loaded


def test_an_unknown_format_name_is_refused_with_the_allowed_names() -> None:
    with pytest.raises(ValueError, match=r"model.pretrained_format: unknown checkpoint format 'mea'.*'auto'.*mae_full"):
        forced_format("mea", "model.pretrained_format")
    assert forced_format("auto") is None and forced_format("mocov3") == "mocov3" and "mocov3" in FORMATS
