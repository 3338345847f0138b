"""Matrix spec validation: every mistake names the file, the key and the allowed values."""

from __future__ import annotations

from pathlib import Path

import pytest

from mae_transfer.matrix.spec.matrix_spec import SpecError, load_spec

VALID = """
name: demo
backbones:
  - {name: mine, checkpoint: ckpt.pth, arch: vit_base_patch16}
tasks:
  - {task: inat2017, recipe: paper}
seeds: 2
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "matrix.yaml"
    path.write_text(text)
    return path


def test_valid_spec_reads_typed_fields(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, VALID))
    assert spec.name == "demo"
    assert spec.seeds == (0, 1)
    assert spec.tasks[0].protocol == "finetune"
    assert spec.work_root == (tmp_path / "runs" / "demo").resolve()
    assert spec.resolve(spec.backbones[0].checkpoint) == (tmp_path / "ckpt.pth").resolve()


def test_wrong_task_name_names_file_key_and_allowed_values(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("task: inat2017", "task: inat2016"))
    with pytest.raises(SpecError) as raised:
        load_spec(path)
    message = str(raised.value)
    assert str(path) in message
    assert "tasks[0].task" in message
    assert "'inat2016'" in message
    for allowed in ("coco-maskrcnn", "ade20k-upernet", "inat2017", "inat2018", "inat2019", "places205", "places365"):
        assert allowed in message


def test_missing_checkpoint_names_file_key_and_allowed_values(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("checkpoint: ckpt.pth, ", ""))
    with pytest.raises(SpecError) as raised:
        load_spec(path)
    message = str(raised.value)
    assert str(path) in message and "backbones[0].checkpoint" in message and "missing" in message
    assert "generate:ARCH" in message and "vit_base_patch16" in message


def test_negative_seed_count_names_file_key_and_allowed_values(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("seeds: 2", "seeds: -1"))
    with pytest.raises(SpecError) as raised:
        load_spec(path)
    message = str(raised.value)
    assert str(path) in message and ": seeds:" in message and "-1" in message
    assert "seed count >= 1" in message


@pytest.mark.parametrize(
    ("change", "key", "allowed"),
    [
        (("recipe: paper", "recipe: vitdet"), "tasks[0].recipe", "paper, reduced, smoke"),
        (("recipe: paper", "recipe: paper, protocol: partial-0"), "tasks[0].protocol", "partial-K"),
        (("recipe: paper", "recipe: paper, protocol: mlp_last_block"), "tasks[0].protocol", "partial-mlp"),
        (("arch: vit_base_patch16", "arch: vit_base_patch16, format: mea"), "backbones[0].format",
         "auto, canonical, mae"),
        (("arch: vit_base_patch16", "arch: vit_giant"), "backbones[0].arch", "vit_huge_patch14"),
        (("seeds: 2", "seeds: 2\nretries: 1"), "retries", "max_attempts"),
        (("seeds: 2", "seeds: 2\ncheckpoint_policy: median"), "checkpoint_policy", "last, best"),
        (("recipe: paper", "recipe: paper, backbones: [theirs]"), "tasks[0].backbones[0]", "mine"),
        (("recipe: paper", "recipe: paper, eval: ms+flip"), "tasks[0].eval", "ade20k-upernet"),
    ],
)
def test_other_mistakes_name_key_and_allowed_values(tmp_path: Path, change, key: str, allowed: str) -> None:
    path = write(tmp_path, VALID.replace(*change))
    with pytest.raises(SpecError) as raised:
        load_spec(path)
    assert f"{path}: {key}:" in str(raised.value)
    assert allowed in str(raised.value)


def test_generated_checkpoint_sets_arch(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, VALID.replace("checkpoint: ckpt.pth, arch: vit_base_patch16",
                                                   "checkpoint: 'generate:vit_tiny_patch16'")))
    assert spec.backbones[0].generated and spec.backbones[0].arch == "vit_tiny_patch16"


def test_shipped_matrices_are_valid() -> None:
    root = Path(__file__).resolve().parents[2] / "benchmarks"
    for name in ("mae_paper.yaml", "smoke.yaml", "families.yaml", "families_smoke.yaml"):
        assert load_spec(root / name).tasks


@pytest.mark.parametrize(
    ("declared", "key", "expected"),
    [
        ("family: dinov3", "backbones[0].family", "allowed values: beit, clip, dino, dinov2, dinov2_reg, ijepa, mae, siglip"),
        ("family: clip", "backbones[0].activation", "missing; family 'clip' needs it declared"),
        ("family: clip, activation: quickgelu", "backbones[0].activation", "allowed values: gelu, quick_gelu, gelu_tanh"),
        ("family: siglip, norm_eps: 0", "backbones[0].norm_eps", "expected a finite positive number, at most 1"),
    ],
)
def test_family_declarations_name_the_key_and_allowed_values(tmp_path: Path, declared: str, key: str,
                                                           expected: str) -> None:
    path = write(tmp_path, VALID.replace("arch: vit_base_patch16", f"arch: vit_base_patch16, {declared}"))
    with pytest.raises(SpecError) as raised:
        load_spec(path)
    assert f"{path}: {key}:" in str(raised.value) and expected in str(raised.value)
    if key.endswith("activation") and "missing" in expected:  # the hint says which value which weights need
        assert "quick_gelu for OpenAI CLIP weights" in str(raised.value)


def test_declarations_are_typed_and_a_generated_checkpoint_takes_its_family_layouts(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, VALID.replace(
        "arch: vit_base_patch16", "arch: vit_base_patch16, family: clip, activation: quick_gelu, norm_eps: 1.0e-5")))
    assert spec.backbones[0].declarations == {"family": "clip", "activation": "quick_gelu", "norm_eps": 1e-5}
    generated = VALID.replace("checkpoint: ckpt.pth, arch: vit_base_patch16",
                              "checkpoint: 'generate:vit_tiny_patch16', family: siglip, format: hf_clip")
    assert load_spec(write(tmp_path, generated)).backbones[0].format == "hf_clip"
    path = write(tmp_path, generated.replace("format: hf_clip", "format: dinov2"))
    with pytest.raises(SpecError, match=r"backbones\[0\]\.format: 'dinov2': a generated siglip checkpoint is "
                                        r"written in one of hf_clip, timm"):
        load_spec(path)
    stage = VALID.replace("{name: mine, checkpoint: ckpt.pth, arch: vit_base_patch16}",
                          "{name: mine, family: dinov2, pretrain: {config: pretrain/x.py}}")
    with pytest.raises(SpecError, match=r"backbones\[0\]\.family: 'dinov2': a pre-training stage makes an MAE encoder"):
        load_spec(write(tmp_path, stage))
