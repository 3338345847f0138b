"""Bad files give a clear `CheckpointError`; a pickle with a code payload never runs."""

from __future__ import annotations

import argparse
import builtins
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from checkpoint_cases import ARCH, timm_state
from mae_transfer.checkpoints import CheckpointError, load_pretrained, read_checkpoint
from mae_transfer.models import build_vit


class ExecPayload:
    """Unpickling this with a plain unpickler would run ``exec`` and write ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


class SystemPayload:
    """Unpickling this with a plain unpickler would run ``os.system('touch marker')``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _untouched_model():
    model = build_vit(ARCH)
    return model, {k: v.clone() for k, v in model.state_dict().items()}


def _assert_untouched(model, before) -> None:
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())


@pytest.mark.parametrize("payload", [ExecPayload, SystemPayload])
def test_code_payload_is_refused_and_never_runs(tmp_path: Path, payload: type) -> None:
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.pth"
    torch.save({"model": {**timm_state(num_classes=0), "extra": payload(marker)}}, path)
    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    assert any(name.endswith(("exec", "system")) for name in unsafe)  # the payload is there
    model, before = _untouched_model()

    with pytest.raises(CheckpointError) as caught:
        load_pretrained(model, path)

    message = str(caught.value)
    assert str(path) in message and "refusing to load" in message
    assert "exec" in message or "system" in message
    assert not marker.exists()
    _assert_untouched(model, before)


@pytest.mark.parametrize("container", ["legacy torch.save", "plain pickle"])
@pytest.mark.parametrize("payload", [ExecPayload, SystemPayload])
def test_non_zip_code_payload_is_refused_as_code_never_as_corrupt(tmp_path: Path, payload: type,
                                                                  container: str) -> None:
    import pickle

    from mae_transfer.checkpoints.reader import read_training_checkpoint

    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.pth"
    if container == "plain pickle":  # weights as lists: a pickled tensor would name torch's own loader first
        path.write_bytes(pickle.dumps({"model": {"w": [0.0, 0.0]}, "extra": payload(marker)}, protocol=2))
    else:
        torch.save({"model": {"w": torch.zeros(2)}, "extra": payload(marker)}, path,
                   _use_new_zipfile_serialization=False)
    named = ("'exec'", "'builtins.exec'") if payload is ExecPayload else ("'posix.system'", "'os.system'")
    for read in (read_checkpoint, read_training_checkpoint):
        with pytest.raises(CheckpointError) as caught:
            read(path)
        message = str(caught.value)
        assert str(path) in message and "refusing to load" in message and "would run code" in message, message
        assert any(f"references {name}" in message for name in named), message
        assert "truncated" not in message and "weights_only" not in message, message
    assert not marker.exists()


def test_truncated_file(tmp_path: Path) -> None:
    whole = tmp_path / "whole.pth"
    torch.save({"model": timm_state(num_classes=0)}, whole)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    model, before = _untouched_model()
    with pytest.raises(CheckpointError, match="truncated or corrupt") as caught:
        load_pretrained(model, cut)
    assert caught.value.file == str(cut)
    _assert_untouched(model, before)


def test_truncated_safetensors(tmp_path: Path) -> None:
    whole = tmp_path / "whole.safetensors"
    save_file({k: v.contiguous() for k, v in timm_state(num_classes=0).items()}, str(whole))
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size - 1000])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as caught:
        read_checkpoint(cut)
    assert str(cut) in str(caught.value)


def test_text_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.pth"
    path.write_text("these are not weights\n")
    model, before = _untouched_model()
    with pytest.raises(CheckpointError, match="not a checkpoint") as caught:
        load_pretrained(model, path)
    assert str(path) in str(caught.value) and "these are not" in str(caught.value)
    _assert_untouched(model, before)


def test_empty_file_and_missing_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pth"
    empty.touch()
    with pytest.raises(CheckpointError, match="empty"):
        read_checkpoint(empty)
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        read_checkpoint(tmp_path / "absent.pth")


@pytest.mark.parametrize("content", [{}, {"model": {}}, {"state_dict": {}}])
def test_empty_dict(tmp_path: Path, content: dict) -> None:
    path = tmp_path / "empty_dict.pth"
    torch.save(content, path)
    model, before = _untouched_model()
    with pytest.raises(CheckpointError, match="empty") as caught:
        load_pretrained(model, path)
    assert caught.value.file == str(path)
    _assert_untouched(model, before)


def test_checkpoint_without_vit_keys(tmp_path: Path) -> None:
    path = tmp_path / "resnet.pth"
    torch.save({"state_dict": {"conv1.weight": torch.zeros(64, 3, 7, 7)}}, path)
    with pytest.raises(CheckpointError, match="unrecognised checkpoint layout.*conv1.weight"):
        load_pretrained(build_vit(ARCH), path)


def test_training_bookkeeping_objects_are_read_inertly(tmp_path: Path) -> None:
    """Official MAE/DeiT training checkpoints carry argparse args and numpy scalars."""
    sd = timm_state(num_classes=0)
    args = argparse.Namespace(model="mae_vit_tiny", blr=1.5e-4, input_size=224)
    path = tmp_path / "checkpoint-799.pth"
    torch.save({"model": sd, "args": args, "epoch": 799, "best": np.float64(0.5)}, path)

    raw = read_checkpoint(path)
    assert type(raw.obj["args"]).__name__ == "OpaqueObject"
    model = build_vit(ARCH)
    report = load_pretrained(model, path)
    assert report.format == "mae" and len(report.matched) == len(sd)


def test_mmengine_message_hub_is_read_inertly(tmp_path: Path) -> None:
    history_buffer = pytest.importorskip("mmengine.logging.history_buffer")
    buffer = history_buffer.HistoryBuffer()
    buffer.update(0.5)
    path = tmp_path / "epoch_1.pth"
    state = {"backbone." + k: v for k, v in timm_state(num_classes=0).items()}
    hub = {"log_scalars": {"loss": buffer}}
    torch.save({"meta": {}, "state_dict": state, "message_hub": hub}, path)
    report = load_pretrained(build_vit(ARCH), path)
    assert report.format == "mm_task"
    # The mmengine integration allow-lists the real classes process-wide; user checkpoints are
    # still read with the inert stand-ins only, and the integration's list survives the read.
    engine = pytest.importorskip("mae_transfer.integrations.engine")
    assert load_pretrained(build_vit(ARCH), path).format == "mm_task"
    assert history_buffer.HistoryBuffer in torch.serialization.get_safe_globals()
    assert engine.MMENGINE_CHECKPOINT_GLOBALS[0] is history_buffer.HistoryBuffer


def test_legacy_non_zip_format(tmp_path: Path) -> None:
    path = tmp_path / "legacy.pth"
    torch.save({"model": timm_state(num_classes=0)}, path, _use_new_zipfile_serialization=False)
    assert load_pretrained(build_vit(ARCH), path).format == "mae"


class GetattrPayload:
    """Reaches for a method of a real class through ``getattr`` (allowed only on stand-ins)."""

    def __reduce__(self):
        return (getattr, (torch.Tensor, "abs"))


def test_getattr_on_real_objects_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "getattr.pth"
    torch.save({"model": {**timm_state(num_classes=0), "extra": GetattrPayload()}}, path)
    with pytest.raises(CheckpointError, match="refusing to load.*getattr"):
        read_checkpoint(path)
