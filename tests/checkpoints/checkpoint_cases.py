"""Checkpoints in every supported format, built from a timm ViT's state dict.

The renames below are written from the formats' documentation (REFERENCES.md), independently
of `mae_transfer.checkpoints.convert`, so the tests check the conversion against the spec.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import timm
import torch
from safetensors.torch import save_file

ARCH = "vit_tiny_patch16"
DIM, DEPTH, HEADS, GRID = 192, 12, 3, 14
TABLE_ROWS = (2 * GRID - 1) ** 2 + 3


@dataclass
class Case:
    """A checkpoint in one format and what loading it must give."""

    name: str
    checkpoint: dict[str, Any]
    format: str
    expected: dict[str, torch.Tensor]
    dropped: set[str] = field(default_factory=set)
    missing: set[str] = field(default_factory=set)
    overrides: dict[str, Any] = field(default_factory=dict)
    suffix: str = ".pth"


def timm_state(**kwargs: Any) -> dict[str, torch.Tensor]:
    """A vit_tiny timm state dict with every tensor randomised (so nothing equals an init).

    Built once per keyword set (timm model creation takes seconds on a busy CPU); callers get
    their own dict of the shared, never-modified tensors.
    """
    key = tuple(sorted(kwargs.items()))
    if key not in _TIMM_STATES:
        torch.manual_seed(0)
        model = timm.create_model("vit_tiny_patch16_224", pretrained=False, **kwargs)
        generator = torch.Generator().manual_seed(len(_TIMM_STATES))
        _TIMM_STATES[key] = {
            k: v + 0.02 * torch.randn(v.shape, generator=generator)
            for k, v in model.state_dict().items()
        }
    return dict(_TIMM_STATES[key])


_TIMM_STATES: dict[tuple, dict[str, torch.Tensor]] = {}


def save(case: Case, directory: Path) -> Path:
    """Write a case's checkpoint as a torch.save or .safetensors file."""
    path = directory / f"{case.name}{case.suffix}"
    if case.suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in case.checkpoint.items()}, str(path))
    else:
        torch.save(case.checkpoint, path)
    return path


def to_openmmlab(key: str) -> str:
    """timm -> MMPretrain / beit2mmseg names (without the ``backbone.`` prefix)."""
    match = re.match(r"^blocks\.(\d+)\.(.*)$", key)
    if match:
        rest = match.group(2)
        for old, new in (
            ("norm1.", "ln1."),
            ("norm2.", "ln2."),
            ("mlp.fc1.", "ffn.layers.0.0."),
            ("mlp.fc2.", "ffn.layers.1."),
        ):
            rest = rest.replace(old, new)
        return f"layers.{match.group(1)}.{rest}"
    return key.replace("patch_embed.proj.", "patch_embed.projection.")


def mae_decoder() -> dict[str, torch.Tensor]:
    """The official MAE decoder keys of a ``_full`` / visualize checkpoint (small shapes)."""
    return {
        "mask_token": torch.randn(1, 1, 64),
        "decoder_embed.weight": torch.randn(64, DIM),
        "decoder_embed.bias": torch.randn(64),
        "decoder_pos_embed": torch.randn(1, 1 + GRID * GRID, 64),
        "decoder_blocks.0.norm1.weight": torch.randn(64),
        "decoder_blocks.0.attn.qkv.weight": torch.randn(192, 64),
        "decoder_norm.weight": torch.randn(64),
        "decoder_pred.weight": torch.randn(16 * 16 * 3, 64),
    }


def _mae() -> Case:
    sd = timm_state(num_classes=0)
    return Case("mae", {"model": sd}, "mae", sd)


def _mae_full() -> Case:
    sd = timm_state(num_classes=0)
    decoder = mae_decoder()
    return Case("mae_full", {"model": {**sd, **decoder}}, "mae_full", sd, dropped=set(decoder))


def _mae_finetuned() -> Case:
    sd = timm_state(num_classes=10, global_pool="avg", fc_norm=True)
    encoder = {k: v for k, v in sd.items() if not k.startswith(("head.", "fc_norm."))}
    extras = {k for k in sd if k.startswith(("head.", "fc_norm."))}
    return Case(
        "mae_finetuned", {"model": sd}, "mae_finetuned", encoder, dropped=extras,
        missing={"norm.weight", "norm.bias"},
    )


def _timm_pth() -> Case:
    sd = timm_state(num_classes=0)
    return Case("timm_pth", sd, "timm", sd)


def _timm_safetensors() -> Case:
    sd = timm_state(num_classes=0)
    return Case("timm_safetensors", sd, "timm", sd, suffix=".safetensors")


def _supervised() -> Case:
    sd = timm_state(num_classes=1000)
    encoder = {k: v for k, v in sd.items() if not k.startswith("head.")}
    head = {"head.weight", "head.bias"}
    return Case("supervised", {"model": sd}, "supervised", encoder, dropped=head)


def _deit_distilled() -> Case:
    sd = timm_state(num_classes=1000)
    encoder = {k: v for k, v in sd.items() if not k.startswith("head.")}
    dist_slot = torch.randn(1, 1, DIM)
    stored = dict(sd)
    stored["pos_embed"] = torch.cat([sd["pos_embed"][:, :1], dist_slot, sd["pos_embed"][:, 1:]], 1)
    stored["dist_token"] = torch.randn(1, 1, DIM)
    stored["head_dist.weight"] = torch.randn(1000, DIM)
    stored["head_dist.bias"] = torch.randn(1000)
    dropped = {"dist_token", "head_dist.weight", "head_dist.bias", "head.weight", "head.bias"}
    return Case("deit", {"model": stored}, "deit_distilled", encoder, dropped=dropped)


def _mmpretrain() -> Case:
    sd = timm_state(num_classes=0)
    backbone = {}
    for key, value in sd.items():
        name = to_openmmlab(key)
        name = "ln1." + name[len("norm."):] if name.startswith("norm.") else name
        backbone["backbone." + name] = value
    extras = {
        "neck.mask_token": torch.randn(1, 1, 64),
        "neck.decoder_embed.weight": torch.randn(64, DIM),
        "neck.decoder_blocks.0.ln1.weight": torch.randn(64),
        "head.loss_module.dummy": torch.randn(1),
        "data_preprocessor.mean": torch.randn(3, 1, 1),
    }
    checkpoint = {
        "meta": {"mmengine_version": "0.10.7", "epoch": 1600},
        "state_dict": {**backbone, **extras},
    }
    return Case("mmpretrain", checkpoint, "mmpretrain", sd, dropped=set(extras))


def _mmseg_converted() -> Case:
    sd = timm_state(num_classes=0)
    converted = {"backbone." + to_openmmlab(k): v for k, v in sd.items()}
    return Case("mmseg_converted", converted, "mmseg", sd)


def _mmseg_segmentor() -> Case:
    sd = timm_state(num_classes=0)
    converted = {"backbone." + to_openmmlab(k): v for k, v in sd.items()}
    heads = {
        "decode_head.conv_seg.weight": torch.randn(150, 512, 1, 1),
        "auxiliary_head.conv_seg.weight": torch.randn(150, 256, 1, 1),
    }
    checkpoint = {"meta": {"seed": 0}, "state_dict": {**converted, **heads}}
    return Case("mmseg_segmentor", checkpoint, "mmseg", sd, dropped=set(heads))


def _mocov3() -> Case:
    sd = timm_state(num_classes=0)
    state = {"module.base_encoder." + k: v for k, v in sd.items()}
    extras = {
        "module.base_encoder.head.0.weight": torch.randn(4096, DIM),
        "module.momentum_encoder.cls_token": torch.randn(1, 1, DIM),
        "module.momentum_encoder.blocks.0.attn.qkv.weight": torch.randn(3 * DIM, DIM),
        "module.predictor.0.weight": torch.randn(4096, 256),
    }
    checkpoint = {
        "epoch": 300,
        "arch": "vit_tiny",
        "state_dict": {**state, **extras},
        "optimizer": {"state": {}, "param_groups": [{"lr": 1.5e-4, "params": [0, 1]}]},
    }
    return Case("mocov3", checkpoint, "mocov3", sd, dropped=set(extras))


def _beit_state(shared_table: bool) -> tuple[dict, dict, set[str]]:
    """Official BEiT naming from a layer-scale timm ViT; returns (stored, expected, dropped)."""
    sd = timm_state(num_classes=0, init_values=0.1)
    stored: dict[str, torch.Tensor] = {}
    expected = {k: v for k, v in sd.items() if k != "pos_embed"}
    dropped = {"mask_token", "lm_head.weight", "lm_head.bias"}
    shared = torch.randn(TABLE_ROWS, HEADS)
    for key, value in sd.items():
        if key == "pos_embed":
            continue
        match = re.match(r"^(blocks\.\d+\.)(.*)$", key)
        if match and match.group(2) == "attn.qkv.bias":
            q, _, v = value.chunk(3)
            stored[match.group(1) + "attn.q_bias"] = q
            stored[match.group(1) + "attn.v_bias"] = v
            expected[key] = torch.cat([q, torch.zeros_like(q), v])
        elif match and match.group(2) in ("ls1.gamma", "ls2.gamma"):
            stored[match.group(1) + "gamma_" + match.group(2)[2]] = value
        else:
            stored[key] = value
    for i in range(DEPTH):
        table_key = f"blocks.{i}.attn.relative_position_bias_table"
        if shared_table:
            expected[table_key] = shared
        else:
            stored[table_key] = expected[table_key] = torch.randn(TABLE_ROWS, HEADS)
            index_key = f"blocks.{i}.attn.relative_position_index"
            stored[index_key] = torch.zeros(GRID * GRID + 1, GRID * GRID + 1, dtype=torch.long)
            dropped.add(index_key)
    if shared_table:
        stored["rel_pos_bias.relative_position_bias_table"] = shared
        stored["rel_pos_bias.relative_position_index"] = torch.zeros(2, 2, dtype=torch.long)
        dropped.add("rel_pos_bias.relative_position_index")
    stored.update(mask_token=torch.randn(1, 1, DIM), **{
        "lm_head.weight": torch.randn(8192, DIM), "lm_head.bias": torch.randn(8192)})
    return stored, expected, dropped


def _beit() -> Case:
    stored, expected, dropped = _beit_state(shared_table=False)
    return Case(
        "beit", {"model": stored}, "beit", expected, dropped=dropped, missing={"pos_embed"},
        overrides={"layer_scale_init": 0.5, "rel_pos_bias": True},
    )


def _beit_shared() -> Case:
    stored, expected, dropped = _beit_state(shared_table=True)
    return Case(
        "beit_shared", {"model": stored}, "beit", expected, dropped=dropped, missing={"pos_embed"},
        overrides={"layer_scale_init": 0.5, "rel_pos_bias": True},
    )


def _mm_task() -> Case:
    sd = timm_state(num_classes=0)
    state = {"backbone." + k: v for k, v in sd.items()}
    heads = {"decode_head.conv_seg.weight": torch.randn(150, 512, 1, 1)}
    return Case("mm_task", {"state_dict": {**state, **heads}}, "mm_task", sd, dropped=set(heads))


CASES: dict[str, Callable[[], Case]] = {
    "mae": _mae,
    "mae_full": _mae_full,
    "mae_finetuned": _mae_finetuned,
    "timm_pth": _timm_pth,
    "timm_safetensors": _timm_safetensors,
    "supervised": _supervised,
    "deit": _deit_distilled,
    "mmpretrain": _mmpretrain,
    "mmseg_converted": _mmseg_converted,
    "mmseg_segmentor": _mmseg_segmentor,
    "mocov3": _mocov3,
    "beit": _beit,
    "beit_shared": _beit_shared,
    "mm_task": _mm_task,
}
