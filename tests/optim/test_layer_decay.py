"""Layer-wise lr decay: layer ids, lr scales and weight-decay rules (official MAE semantics)."""

from __future__ import annotations

import pytest
import torch
from layer_decay_models import DEPTH, EMBED_DIM, TinyClassifier, tiny_vit
from torch import nn

from mae_transfer.optim import LayerDecaySpec, find_backbone, layer_id_for, param_groups

RATE = 0.5
BASE_LR = 1e-3
WEIGHT_DECAY = 0.05


def settings_by_name(model: nn.Module, spec: LayerDecaySpec) -> dict[str, dict]:
    """name -> {"lr", "lr_scale", "weight_decay", "layer_id"} read back from the groups."""
    out = {}
    for group in param_groups(model, spec, BASE_LR, WEIGHT_DECAY):
        assert len(group["params"]) == len(group["param_names"])
        for name in group["param_names"]:
            assert name not in out, f"{name} in two groups"
            out[name] = {k: group[k] for k in ("lr", "lr_scale", "weight_decay", "layer_id")}
    return out


def test_every_block_gets_its_own_scale(classifier: TinyClassifier) -> None:
    settings = settings_by_name(classifier, LayerDecaySpec(RATE))
    block_scales = []
    for index, block in enumerate(classifier.backbone.blocks):
        expected = RATE ** (DEPTH + 1 - (index + 1))
        names = [f"backbone.blocks.{index}.{name}" for name, _ in block.named_parameters()]
        assert names
        for name in names:
            assert settings[name]["layer_id"] == index + 1
            assert settings[name]["lr"] == pytest.approx(BASE_LR * expected)
        block_scales.append(settings[names[0]]["lr_scale"])
    assert len(set(block_scales)) == DEPTH
    assert block_scales == sorted(block_scales)


def test_embeddings_fully_decayed_and_head_at_base_lr(classifier: TinyClassifier) -> None:
    settings = settings_by_name(classifier, LayerDecaySpec(RATE))
    for name in ("cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias"):
        assert settings[f"backbone.{name}"]["layer_id"] == 0
        assert settings[f"backbone.{name}"]["lr_scale"] == pytest.approx(RATE ** (DEPTH + 1))
    top = ("backbone.norm.weight", "head.weight", "head.bias", "neck.0.weight", "neck.1.bias")
    for name in top:
        assert settings[name]["layer_id"] == DEPTH + 1
        assert settings[name]["lr_scale"] == 1.0
        assert settings[name]["lr"] == BASE_LR


@pytest.mark.parametrize(
    "vit_overrides",
    [
        {},
        {"rel_pos_bias": True, "layer_scale_init": 0.1},
        {"window": {"size": 1, "global_blocks": (1, 3), "rel_pos": True}},
        {"window": {"size": 1, "global_blocks": (1, 3), "rel_pos": "shared"}},
    ],
    ids=["plain", "rel_pos_bias+layer_scale", "window", "window+shared_rel_pos"],
)
def test_weight_decay_exemptions(make_classifier, vit_overrides: dict) -> None:
    model = make_classifier(**vit_overrides)
    settings = settings_by_name(model, LayerDecaySpec(RATE))
    exempt_by_name = {f"backbone.{name}" for name in model.backbone.no_weight_decay()}
    if model.backbone.uses_cls_token:
        assert {"backbone.pos_embed", "backbone.cls_token"} <= exempt_by_name
    else:  # window attention: the model has no cls token at all
        assert "backbone.pos_embed" in exempt_by_name and "backbone.cls_token" not in settings
    for name, param in model.named_parameters():
        exempt = param.ndim <= 1 or name in exempt_by_name
        assert settings[name]["weight_decay"] == (0.0 if exempt else WEIGHT_DECAY), name
    names = set(settings)
    assert any(name.endswith(".bias") for name in names)
    assert settings["backbone.blocks.0.norm1.weight"]["weight_decay"] == 0.0
    assert settings["backbone.blocks.0.attn.qkv.weight"]["weight_decay"] == WEIGHT_DECAY
    assert settings["head.weight"]["weight_decay"] == WEIGHT_DECAY
    if vit_overrides.get("rel_pos_bias"):
        table = "backbone.blocks.2.attn.relative_position_bias_table"
        assert settings[table]["weight_decay"] == 0.0
        assert settings[table]["layer_id"] == 3
        assert settings["backbone.blocks.2.ls1.gamma"]["layer_id"] == 3
    if vit_overrides.get("window", {}).get("rel_pos") == "shared":
        for kind in ("window", "global"):  # owned by the backbone, above its blocks
            table = f"backbone.shared_rel_pos.{kind}.relative_position_bias_table"
            assert settings[table]["weight_decay"] == 0.0
            assert settings[table]["layer_id"] == DEPTH + 1


def test_layers_follow_module_tree_not_names(make_classifier) -> None:
    """A head whose parameters are named ``blocks.N``/``layers.N`` stays at the top layer, and
    the backbone is found under any attribute name."""

    class Wrapper(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.ModuleDict({"vit": tiny_vit()})
            self.blocks = nn.ModuleList([nn.Linear(EMBED_DIM, EMBED_DIM) for _ in range(2)])
            self.layers = nn.ModuleList([nn.Linear(EMBED_DIM, EMBED_DIM)])

    model = Wrapper()
    assert find_backbone(model)[0] == "encoder.vit"
    settings = settings_by_name(model, LayerDecaySpec(RATE))
    for name in ("blocks.0.weight", "blocks.1.weight", "layers.0.weight"):
        assert settings[name]["layer_id"] == DEPTH + 1
    assert settings["encoder.vit.blocks.1.mlp.fc1.weight"]["layer_id"] == 2
    assert layer_id_for(model, "encoder.vit.blocks.3.attn.qkv.weight") == 4
    with pytest.raises(KeyError, match="not.a.param"):
        layer_id_for(model, "not.a.param")


def test_groups_partition_trainable_parameters(classifier: TinyClassifier) -> None:
    classifier.backbone.patch_embed.requires_grad_(False)
    groups = param_groups(classifier, LayerDecaySpec(RATE), BASE_LR, WEIGHT_DECAY)
    listed = [name for group in groups for name in group["param_names"]]
    trainable = [name for name, p in classifier.named_parameters() if p.requires_grad]
    assert sorted(listed) == sorted(trainable)
    assert "backbone.patch_embed.proj.weight" not in listed
    keys = [(g["layer_id"], g["weight_decay"]) for g in groups]
    assert len(keys) == len(set(keys))
    assert groups[0]["lr_scale"] == 1.0
    for group in groups:
        assert group["lr"] == pytest.approx(BASE_LR * group["lr_scale"])


def test_groups_drive_a_torch_optimizer(classifier: TinyClassifier) -> None:
    groups = param_groups(classifier, LayerDecaySpec(RATE), BASE_LR, WEIGHT_DECAY)
    optimizer = torch.optim.AdamW(groups)
    classifier(torch.randn(2, 3, 32, 32)).sum().backward()
    before = classifier.backbone.pos_embed.detach().clone()
    optimizer.step()
    assert not torch.equal(before, classifier.backbone.pos_embed)
    state = optimizer.state_dict()
    assert [g["param_names"] for g in state["param_groups"]] == [g["param_names"] for g in groups]
    assert [g["lr_scale"] for g in state["param_groups"]] == [g["lr_scale"] for g in groups]


def test_num_layers_override(classifier: TinyClassifier) -> None:
    settings = settings_by_name(classifier, LayerDecaySpec(RATE, num_layers=DEPTH + 3))
    assert settings["head.weight"]["lr_scale"] == 1.0
    assert settings["backbone.pos_embed"]["lr_scale"] == pytest.approx(RATE ** (DEPTH + 3))
    last_block = settings["backbone.blocks.3.mlp.fc2.weight"]
    assert last_block["lr_scale"] == pytest.approx(RATE ** (DEPTH + 3 - 4))
    with pytest.raises(ValueError, match=r"num_layers.*at least depth \+ 1 = 5"):
        param_groups(classifier, LayerDecaySpec(RATE, num_layers=DEPTH), BASE_LR, WEIGHT_DECAY)


def test_extra_no_decay_patterns(classifier: TinyClassifier) -> None:
    spec = LayerDecaySpec(RATE, no_decay_names=("head.weight", "fc1.*"))
    settings = settings_by_name(classifier, spec)
    assert settings["head.weight"]["weight_decay"] == 0.0
    assert settings["backbone.blocks.2.mlp.fc1.weight"]["weight_decay"] == 0.0
    assert settings["backbone.blocks.2.mlp.fc2.weight"]["weight_decay"] == WEIGHT_DECAY
    assert settings["neck.0.weight"]["weight_decay"] == WEIGHT_DECAY
    with pytest.raises(ValueError, match=r"'hed\.weight'.*match no trainable parameter"):
        typo = LayerDecaySpec(RATE, no_decay_names=("hed.weight",))
        param_groups(classifier, typo, BASE_LR, WEIGHT_DECAY)


def test_model_without_backbone_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"no mae_transfer\.models\.MAEViT inside Sequential"):
        param_groups(nn.Sequential(nn.Linear(2, 2)), LayerDecaySpec(RATE), BASE_LR, WEIGHT_DECAY)


def test_model_with_two_backbones_is_rejected() -> None:
    model = nn.ModuleDict({"student": tiny_vit(), "teacher": tiny_vit()})
    with pytest.raises(ValueError, match=r"2 MAEViT modules.*'student', 'teacher'"):
        param_groups(model, LayerDecaySpec(RATE), BASE_LR, WEIGHT_DECAY)


@pytest.mark.parametrize("rate", [0.0, -0.5, 1.5, float("nan"), "0.65", True])
def test_bad_decay_rate(rate) -> None:
    with pytest.raises(ValueError, match="decay_rate"):
        LayerDecaySpec(rate)


@pytest.mark.parametrize(
    "options",
    [
        {"num_layers": 0},
        {"num_layers": 2.5},
        {"no_decay_names": "head.weight"},
        {"no_decay_names": ("",)},
    ],
)
def test_bad_spec_fields(options: dict) -> None:
    with pytest.raises(ValueError, match="LayerDecaySpec"):
        LayerDecaySpec(RATE, **options)
