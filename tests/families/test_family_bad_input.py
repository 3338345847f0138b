"""Bad family input is a clear error naming the file, the key and what to declare; inspect/convert name the family."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import family_cases as cases
from mae_transfer.checkpoints import CheckpointError, load_pretrained
from mae_transfer.cli import main
from mae_transfer.models import build_vit

pytest.importorskip("transformers")
pytest.importorskip("open_clip")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    return {"open_clip": cases.open_clip_state(root / "clip", quick_gelu=True),
            "dinov2_reg": cases.dinov2_hub(root / "reg", registers=True),
            "hf_dinov2": cases.hf_dinov2_reg(root / "hf", "dir")}


def test_clip_without_declared_activation_is_refused(files) -> None:
    build = {k: v for k, v in files["open_clip"].build.items() if k != "activation"}
    with pytest.raises(ValueError, match="family 'clip': declare activation .*quick_gelu for OpenAI"):
        build_vit("vit_base_patch16", **build)


def test_declared_family_contradicting_the_file_names_both(files) -> None:
    reference = files["dinov2_reg"]
    model = build_vit("vit_base_patch16", **{**reference.build, "family": "dinov2"})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError) as error:
        load_pretrained(model, reference.path)
    message = str(error.value)
    assert str(reference.path) in message and "register_tokens: file 4, model 0" in message
    assert "family='dinov2_reg'" in message
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # untouched


def test_clip_file_into_a_model_of_another_family(files) -> None:
    reference = files["open_clip"]
    with pytest.raises(CheckpointError, match="pre_norm: file True, model False.*family='clip'"):
        load_pretrained(build_vit("vit_base_patch16", **{**reference.build, "family": "mae", "activation": None}),
                        reference.path)


@pytest.mark.parametrize("key, name", [
    ("blocks.0.attn.rope.freqs", "EVA-02 / DINOv3 rotary"),
    ("blocks.0.mlp.w1.weight", "SwiGLU MLP outside DINOv2-g"),
    ("modality_encoders.IMAGE.local_encoder.proj.weight", "data2vec 2.0"),
])
def test_unimplemented_architectures_are_refused_by_name(key: str, name: str, tmp_path: Path) -> None:
    path = tmp_path / "model.pth"
    torch.save({"model": {key: torch.zeros(2, 2), "blocks.0.norm1.weight": torch.ones(2)}}, path)
    with pytest.raises(CheckpointError, match=f"{name}.*not supported") as error:
        load_pretrained(build_vit("vit_tiny_patch16", depth=1), path)
    assert f"key '{key}'" in str(error.value)


def test_hf_directory_without_config_json(files, tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes((files["hf_dinov2"].path / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="a directory without config.json"):
        load_pretrained(build_vit("vit_tiny_patch16", depth=1), tmp_path)


def test_hf_weights_that_do_not_match_config_json(files, tmp_path: Path) -> None:
    source = files["hf_dinov2"].path
    for name in ("model.safetensors", "config.json"):
        (tmp_path / name).write_bytes((source / name).read_bytes())
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 3}))
    with pytest.raises(CheckpointError, match="do not match config.json: num_hidden_layers is 3 in the config but 2"):
        load_pretrained(build_vit("vit_base_patch16", **files["hf_dinov2"].build), tmp_path)


def test_unknown_hf_model_type_is_named(files, tmp_path: Path) -> None:
    source = files["hf_dinov2"].path
    (tmp_path / "model.safetensors").write_bytes((source / "model.safetensors").read_bytes())
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "swin"}))
    with pytest.raises(CheckpointError, match="model_type 'swin' is not a ViT family"):
        load_pretrained(build_vit("vit_tiny_patch16", depth=1), tmp_path)


def test_inspect_names_the_family_and_what_to_declare(files, capsys) -> None:
    assert main(["inspect", str(files["open_clip"].path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["format"] == "openai_clip" and summary["family"] == "clip"
    assert "quick_gelu for OpenAI" in summary["must_declare"]["activation"]
    assert main(["inspect", str(files["hf_dinov2"].path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["family"] == "dinov2_reg" and summary["must_declare"] == {}
    assert summary["load"]["family"] == "dinov2_reg"


def test_convert_needs_the_declaration_and_the_canonical_file_then_tells_it(files, tmp_path: Path, capsys) -> None:
    source, out = files["open_clip"], tmp_path / "clip.pth"
    assert main(["convert", str(source.path), str(out)]) == 1
    assert "--activation: quick_gelu for OpenAI" in capsys.readouterr().err and not out.exists()
    assert main(["convert", str(source.path), str(out), "--activation", "quick_gelu", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["family"] == "clip"
    model = build_vit("vit_base_patch16", **source.build).eval()
    report = load_pretrained(model, out)
    assert report.format == "canonical" and report.family == "clip" and "activation" not in report.declared
    with pytest.raises(CheckpointError, match="activation: file 'quick_gelu', model 'gelu'"):
        load_pretrained(build_vit("vit_base_patch16", **{**source.build, "activation": "gelu"}), out)
    images = torch.randn(1, 3, 64, 64)
    mine, theirs = source.pooled(model.forward_features(images).detach(), images)
    torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=0)
