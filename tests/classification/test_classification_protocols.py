"""Transfer protocols: exactly the right parameters train, and a linear probe freezes the backbone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from classification_helpers import SMOKE_INAT, build_runner, load_smoke_config

import mae_transfer.integrations.classification  # noqa: F401  (registers the task)
from mae_transfer.classification.model import MAEClassifier
from mae_transfer.classification.protocols import Protocol
from mae_transfer.data import make_dataset

TINY = dict(arch="vit_tiny_patch16", img_size=32, patch_size=8, embed_dim=64, depth=3, num_heads=2)
BLOCK_PARAMS = [
    "norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight", "attn.proj.bias",
    "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias",
]
HEAD = {"head.weight", "head.bias"}
FC_NORM = {"fc_norm.weight", "fc_norm.bias"}


def _trainable(model: torch.nn.Module) -> set[str]:
    return {name for name, parameter in model.named_parameters() if parameter.requires_grad}


def _block(index: int, names: list[str] = BLOCK_PARAMS) -> set[str]:
    return {f"backbone.blocks.{index}.{name}" for name in names}


def test_finetune_trains_everything() -> None:
    model = MAEClassifier(TINY, num_classes=5)
    assert _trainable(model) == {name for name, _ in model.named_parameters()}
    assert "backbone.pos_embed" in _trainable(model) and "backbone.norm.weight" not in _trainable(model)


def test_linear_probe_trains_head_only_behind_affine_free_batchnorm() -> None:
    model = MAEClassifier(TINY, num_classes=5, protocol="linear")
    assert _trainable(model) == HEAD
    assert isinstance(model.head_norm, torch.nn.BatchNorm1d) and not model.head_norm.affine
    assert list(model.head_norm.parameters()) == []
    assert model.protocol.pool == "cls" and isinstance(model.fc_norm, torch.nn.Identity)


@pytest.mark.parametrize(("k", "blocks"), [(1, [2]), (2, [1, 2]), (3, [0, 1, 2])])
def test_partial_trains_last_k_blocks_final_norm_and_head(k: int, blocks: list[int]) -> None:
    model = MAEClassifier(TINY, num_classes=5, protocol=dict(name="partial", num_blocks=k))
    expected = set().union(*(_block(index) for index in blocks)) | FC_NORM | HEAD
    assert _trainable(model) == expected


def test_partial_zero_blocks_is_the_linear_probe() -> None:
    assert Protocol.parse(dict(name="partial", num_blocks=0)) == Protocol("linear")
    model = MAEClassifier(TINY, num_classes=5, protocol=dict(name="partial", num_blocks=0))
    assert _trainable(model) == HEAD and model.head_norm.__class__ is torch.nn.BatchNorm1d


def test_mlp_of_last_block_only() -> None:
    model = MAEClassifier(TINY, num_classes=5, protocol="mlp_last_block")
    mlp = _block(2, ["norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"])
    assert _trainable(model) == mlp | FC_NORM | HEAD


@pytest.mark.parametrize(
    ("protocol", "message"),
    [
        (dict(name="partial", num_blocks=4), "exceeds the backbone depth 3"),
        ("probe", "unknown protocol 'probe'"),
        (dict(name="partial", blocks=2), "unknown key"),
    ],
)
def test_bad_protocols_are_rejected(protocol: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MAEClassifier(TINY, num_classes=5, protocol=protocol)


def test_linear_probe_training_leaves_backbone_bit_identical(tmp_path: Path, one_thread: None) -> None:
    root = make_dataset("inat2017", tmp_path / "data", seed=1)
    cfg = load_smoke_config(SMOKE_INAT, root, tmp_path / "work")
    cfg.model.protocol = "linear"
    cfg.model.backbone.drop_path_rate = 0.0
    cfg.optim_wrapper.optimizer.lr = 0.05
    cfg.train_cfg.max_epochs, cfg.train_cfg.val_interval, cfg.param_scheduler[1].end = 2, 2, 2
    cfg.default_hooks.checkpoint.interval = 10
    runner = build_runner(cfg)
    backbone_before = {k: v.clone() for k, v in runner.model.backbone.state_dict().items()}
    head_before = runner.model.head.weight.detach().clone()
    runner.train()
    optimized = [p for group in runner.optim_wrapper.optimizer.param_groups for p in group["params"]]
    assert {id(p) for p in optimized} == {id(runner.model.head.weight), id(runner.model.head.bias)}
    backbone_after = runner.model.backbone.state_dict()
    assert backbone_before.keys() == backbone_after.keys()
    assert all(torch.equal(backbone_before[k], backbone_after[k]) for k in backbone_before)
    assert not torch.equal(head_before, runner.model.head.weight)
    assert runner.iter == 16  # 64 images / batch 8 x 2 epochs


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("partial-2", Protocol("partial", 2)),
        (dict(name="partial", num_blocks=2), Protocol("partial", 2)),
        ("partial-mlp", Protocol("partial-mlp")),
        ("mlp_last_block", Protocol("partial-mlp")),  # the earlier config spelling (ALIASES)
        (dict(name="mlp_last_block", num_blocks=0), Protocol("partial-mlp")),
        ("partial-0", Protocol("linear")),
    ],
)
def test_config_spellings_parse_to_the_matrix_vocabulary(value: object, expected: Protocol) -> None:
    assert Protocol.parse(value) == expected
    assert Protocol.from_spelling(expected.spelling) == expected


def test_the_matrix_spelling_takes_no_alias_and_no_zero_blocks() -> None:
    for text in ("mlp_last_block", "partial-0", "partial"):
        with pytest.raises(ValueError, match="allowed values: finetune, linear, partial-K"):
            Protocol.from_spelling(text)
