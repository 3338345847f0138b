"""transformers' ViT-style encoder names -> the suite's, in both spellings users hold.

``save_pretrained`` and hub files keep the long-standing layout (``encoder.layer.{i}.attention.
attention.query``, ``layernorm_before``, ``intermediate.dense``, ``layer_scale1.lambda1``,
``mlp.weights_in``); transformers 5.x names the same tensors differently in memory
(``layers.{i}.attention.q_proj``, ``attention.o_proj``, ``mlp.fc1``, ``mlp.gate_proj`` /
``up_proj`` / ``down_proj``; ``transformers/conversion_mapping.py``), so a state dict taken
from a live model has those. Both are read here for ViT, DeiT, ViTMAE, ViT-MSN, I-JEPA, DINOv2
(with and without registers), BEiT and data2vec-vision; CLIP and SigLIP have their own
(:mod:`.hf_clip`).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import torch

from mae_transfer.checkpoints.errors import CheckpointError
from mae_transfer.checkpoints.families.contract import CheckpointFile, Conversion

# Model prefixes in front of the encoder (task and pre-training wrappers).
ENCODER_PREFIXES = ("vit.", "deit.", "dinov2.", "dinov2_with_registers.", "beit.", "data2vec_vision.", "ijepa.")
_BLOCK = re.compile(r"^(?:encoder\.layer|encoder\.layers|layers)\.(\d+)\.(.+)$")
# In-block suffix -> canonical suffix (None: one of q/k/v, fused afterwards).
_IN_BLOCK: tuple[tuple[str, str], ...] = (
    ("attention.attention.relative_position_bias.relative_position_bias_table", "attn.relative_position_bias_table"),
    ("attention.output.dense.", "attn.proj."),
    ("attention.o_proj.", "attn.proj."),
    ("layernorm_before.", "norm1."),
    ("layernorm_after.", "norm2."),
    ("norm1.", "norm1."),
    ("norm2.", "norm2."),
    ("intermediate.dense.", "mlp.fc1."),
    ("output.dense.", "mlp.fc2."),
    ("mlp.fc1.", "mlp.fc1."),
    ("mlp.fc2.", "mlp.fc2."),
    ("mlp.weights_in.", "mlp.fc1."),
    ("mlp.weights_out.", "mlp.fc2."),
    ("mlp.down_proj.", "mlp.fc2."),
    ("layer_scale1.lambda1", "ls1.gamma"),
    ("layer_scale2.lambda1", "ls2.gamma"),
    ("lambda_1", "ls1.gamma"),
    ("lambda_2", "ls2.gamma"),
)
_QKV = re.compile(r"^attention\.(?:attention\.(query|key|value)|(q|k|v)_proj)\.(weight|bias)$")
_GATE_UP = re.compile(r"^mlp\.(gate|up)_proj\.(weight|bias)$")
_TOP = {
    "embeddings.cls_token": "cls_token",
    "embeddings.register_tokens": "reg_token",
    "embeddings.position_embeddings": "pos_embed",
    "embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
    "embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
    "layernorm.weight": "norm.weight",
    "layernorm.bias": "norm.bias",
    "pooler.layernorm.weight": "fc_norm.weight",
    "pooler.layernorm.bias": "fc_norm.bias",
    "encoder.relative_position_bias.relative_position_bias_table": "rel_pos_bias.relative_position_bias_table",
}
# Stored keys that are not encoder weights, with the reason they are dropped.
DROPS: tuple[tuple[str, str], ...] = (
    (r"^decoder\.", "MAE pre-training decoder"),
    (r"^embeddings\.mask_token$", "mask token of masked pre-training (not used on unmasked images)"),
    (r"^pooler\.dense\.", "ViT pooler (tanh projection of the cls token for the pre-training head)"),
    (r"^(classifier|distillation_classifier|cls_classifier)\.", "classification head of the HF task model"),
    (r"^lm_head\.", "BEiT masked-image-modelling head"),
    (r"^layernorm_before_pooler|^fc_norm_pre_head", "task head norm"),
    (r"relative_position_index$", "derived index buffer, recomputed by the model"),
    (r"position_ids$", "derived index buffer"),
)


def strip_prefix(tensors: Mapping[str, torch.Tensor]) -> tuple[str, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(prefix, encoder tensors without it, tensors outside it) for a task or pre-training wrapper."""
    for prefix in ENCODER_PREFIXES:
        if any(k.startswith(prefix + "embeddings.") for k in tensors):
            inner = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            outer = {k: v for k, v in tensors.items() if not k.startswith(prefix)}
            return prefix, inner, outer
    return "", dict(tensors), {}


def is_hf_vit_layout(tensors: Mapping[str, Any]) -> bool:
    """ViT-style HF keys: ``embeddings.patch_embeddings.projection.weight`` (under a known prefix or none)."""
    return any(k.endswith("embeddings.patch_embeddings.projection.weight") for k in tensors)


def convert_hf_vit(file: CheckpointFile, conversion: Conversion, tensors: Mapping[str, torch.Tensor]) -> None:
    """Convert a ViT-style HF state dict (either spelling) into ``conversion``."""
    prefix, inner, outer = strip_prefix(tensors)
    for key in outer:
        reason = next((why for pattern, why in DROPS if re.search(pattern, key)), None)
        conversion.drop(key, reason or f"outside the encoder prefix '{prefix}'")
    qkv: dict[int, dict[str, dict[str, torch.Tensor]]] = {}
    gate_up: dict[tuple[int, str], dict[str, torch.Tensor]] = {}
    for key, value in inner.items():
        stored = prefix + key
        reason = next((why for pattern, why in DROPS if re.search(pattern, key)), None)
        if reason is not None:
            conversion.drop(stored, reason)
            continue
        if key in _TOP:
            conversion.put(_TOP[key], value, stored)
            continue
        match = _BLOCK.match(key)
        if match is None:
            _refuse(file, conversion, stored, value)
        block, rest = int(match.group(1)), match.group(2)
        part = _QKV.match(rest)
        if part is not None:
            letter = (part.group(1) or part.group(2))[0]
            qkv.setdefault(block, {}).setdefault(letter, {})[part.group(3)] = value
            continue
        gated = _GATE_UP.match(rest)
        if gated is not None:
            gate_up.setdefault((block, gated.group(2)), {})[gated.group(1)] = value
            continue
        target = next((new + rest[len(old):] for old, new in _IN_BLOCK if rest.startswith(old)), None)
        if target is None:
            _refuse(file, conversion, stored, value)
        conversion.put(f"blocks.{block}.{target}", value, stored)
    conversion.fuse_qkv(qkv)
    for (block, kind), halves in sorted(gate_up.items()):
        if set(halves) != {"gate", "up"}:
            raise CheckpointError(f"block {block}: SwiGLU gate_proj without up_proj ({kind})", file=file.source,
                                  key=f"layers.{block}.mlp.gate_proj.{kind}")
        # transformers Dinov2SwiGLUFFN: silu(first half) * second half of weights_in = [gate; up]
        conversion.put(f"blocks.{block}.mlp.fc1.{kind}", torch.cat([halves["gate"], halves["up"]]),
                       f"layers.{block}.mlp.gate_proj/up_proj.{kind}")


def _refuse(file: CheckpointFile, conversion: Conversion, stored: str, value: torch.Tensor) -> None:
    raise CheckpointError(
        f"{conversion.format}: key '{stored}' (shape {tuple(value.shape)}) has no place in the suite's ViT; "
        "this part of the HuggingFace layout is not implemented",
        file=file.source, key=stored,
    )
