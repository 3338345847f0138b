"""Conversion of every supported format to the canonical timm / official-MAE key names.

Canonical names (docs/architecture.md): ``patch_embed.proj.*``, ``cls_token``, ``pos_embed``,
``blocks.{i}.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.*``, ``norm.*``; optionally
``blocks.{i}.ls1.gamma``/``ls2.gamma``, ``blocks.{i}.attn.relative_position_bias_table``,
``blocks.{i}.attn.rel_pos_h``/``rel_pos_w``, and ``fc_norm.*``/``head.*`` for classifiers.
Pre-training-only parts (MAE decoder, BEiT LM head, MoCo predictor and momentum encoder,
OpenMMLab necks and task heads) are dropped here, each with its reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch

from mae_transfer.checkpoints.errors import CheckpointError
from mae_transfer.checkpoints.formats import DetectedCheckpoint, detect_format
from mae_transfer.checkpoints.openmmlab_names import mm_to_timm
from mae_transfer.checkpoints.report import DroppedKey
from mae_transfer.models.pos_embed import square_grid

# Keys outside the encoder prefix, by prefix: why they are not part of the encoder.
_OUTSIDE_REASONS = (
    ("module.momentum_encoder.", "MoCo v3 momentum encoder"),
    ("momentum_encoder.", "MoCo v3 momentum encoder"),
    ("module.predictor.", "MoCo v3 predictor"),
    ("predictor.", "MoCo v3 predictor"),
    ("neck.", "pre-training neck (MAE decoder) of the OpenMMLab model"),
    ("head.", "task head of the OpenMMLab model"),
    ("decode_head.", "segmentation decode head"),
    ("auxiliary_head.", "segmentation auxiliary head"),
    ("rpn_head.", "detection RPN head"),
    ("roi_head.", "detection RoI head"),
    ("data_preprocessor.", "data preprocessor buffers"),
)
# Canonical-named keys that are never part of the encoder.
_DROP_REASONS = (
    (re.compile(r"^(decoder_|mask_token$)"), "MAE pre-training decoder"),
    (re.compile(r"^lm_head\."), "BEiT pre-training head"),
    (re.compile(r"^attn_pool\."), "attention-pooling (MAP) head (timm SigLIP); the suite's tasks pool the tokens"),
    (re.compile(r"^dist_token$"), "DeiT distillation token"),
    (re.compile(r"^head_dist\."), "DeiT distillation head"),
    (re.compile(r"relative_position_index$"), "derived index buffer, recomputed by the model"),
)
_SHARED_TABLE = "rel_pos_bias.relative_position_bias_table"


@dataclass
class ConvertedCheckpoint:
    """A checkpoint in canonical naming, with everything that was dropped or rewritten.

    Attributes:
        source: the path, or ``<in-memory dict>``.
        format: the detected format.
        container: ``torch``, ``safetensors`` or ``dict``.
        state_dict: canonical-named tensors.
        origin: canonical key -> key as stored in the file (for error messages).
        dropped: stored keys not carried over, with reasons.
        notes: rewrites worth reporting (q/v bias merge, shared table copies, dist slot).
        zero_pos_embed: a BEiT-style network (relative position tables, no absolute position
            embedding); the loader sets the model's ``pos_embed`` to zeros, which is what that
            network used.
        family: the ViT family the layout belongs to (``mae_transfer.models.options.FAMILIES``),
            or None where the layout is shared by several (a timm-named ViT).
        told: encoder options the file tells (``EncoderOptions`` fields: structure from the
            tensors, eps and activation from a ``config.json``); the loader requires the model's
            to agree.
        must_declare: options the file cannot tell, each with a hint for the user.
    """

    source: str
    format: str
    container: str
    state_dict: dict[str, torch.Tensor]
    origin: dict[str, str] = field(default_factory=dict)
    dropped: list[DroppedKey] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    zero_pos_embed: bool = False
    family: str | None = None
    told: dict[str, Any] = field(default_factory=dict)
    must_declare: dict[str, str] = field(default_factory=dict)


def convert_checkpoint(detected: DetectedCheckpoint) -> ConvertedCheckpoint:
    """Rename and rewrite a detected checkpoint's weights into canonical naming."""
    out = ConvertedCheckpoint(
        source=detected.source,
        format=detected.format,
        container=detected.container,
        state_dict={},
    )
    mm_naming = detected.format in ("mmpretrain", "mmseg")
    for key, value in detected.state_dict.items():
        if not key.startswith(detected.prefix):
            out.dropped.append(DroppedKey(key, _outside_reason(key, detected.prefix)))
            continue
        if not isinstance(value, torch.Tensor):
            out.dropped.append(DroppedKey(key, f"not a tensor ({type(value).__name__})"))
            continue
        name = key[len(detected.prefix):]
        if detected.format == "mocov3" and name.startswith("head."):
            out.dropped.append(DroppedKey(key, "MoCo v3 projection head"))
            continue
        if mm_naming:
            name = mm_to_timm(name)
        name = re.sub(r"\.gamma_([12])$", r".ls\1.gamma", name)
        reason = next((why for pattern, why in _DROP_REASONS if pattern.search(name)), None)
        if reason is not None:
            out.dropped.append(DroppedKey(key, reason))
            continue
        if name in out.state_dict:
            if torch.equal(out.state_dict[name], value):
                out.dropped.append(DroppedKey(key, f"duplicate of '{out.origin[name]}'"))
                continue
            raise CheckpointError(
                f"two different tensors map to '{name}': '{out.origin[name]}' and '{key}'",
                file=detected.source,
                key=key,
            )
        out.state_dict[name] = value
        out.origin[name] = key
    _merge_qv_bias(out)
    expand_shared_table(out)
    _drop_distillation_slot(out, detected)
    has_tables = any(k.endswith("relative_position_bias_table") for k in out.state_dict)
    if has_tables and "pos_embed" not in out.state_dict:
        out.zero_pos_embed = True
        out.notes.append("BEiT-style checkpoint without absolute position embedding: pos_embed = 0")
    return out


def convert_state_dict(
    state_dict: Mapping[str, Any], fmt: str | None = None
) -> dict[str, torch.Tensor]:
    """Canonical-named encoder tensors of a state dict or checkpoint in any supported format.

    Args:
        state_dict: a state dict (or a whole checkpoint dict) as loaded from a file.
        fmt: the format name if known; detected otherwise.

    Raises:
        CheckpointError: unrecognised layout, or two stored tensors mapping to one name.
    """
    detected = detect_format(state_dict)
    if fmt is not None:
        detected.format = fmt
    return convert_checkpoint(detected).state_dict


def _outside_reason(key: str, prefix: str) -> str:
    for start, reason in _OUTSIDE_REASONS:
        if key.startswith(start):
            return reason
    return f"outside the encoder prefix '{prefix}'"


def _merge_qv_bias(out: ConvertedCheckpoint) -> None:
    """BEiT keeps separate q and v biases (k has none): qkv.bias = [q_bias, 0, v_bias]."""
    sd = out.state_dict
    merged = 0
    for q_key in [k for k in sd if k.endswith(".attn.q_bias")]:
        base = q_key[: -len("q_bias")]
        v_key = base + "v_bias"
        if v_key not in sd:
            raise CheckpointError(
                "q_bias without v_bias", file=out.source, key=out.origin[q_key]
            )
        if base + "qkv.bias" in sd:
            raise CheckpointError(
                "both qkv.bias and q_bias/v_bias present", file=out.source, key=out.origin[q_key]
            )
        q_bias, v_bias = sd.pop(q_key), sd.pop(v_key)
        sd[base + "qkv.bias"] = torch.cat([q_bias, torch.zeros_like(q_bias), v_bias])
        out.origin[base + "qkv.bias"] = out.origin.pop(q_key)
        out.origin.pop(v_key)
        merged += 1
    if merged:
        out.notes.append(f"merged q_bias/v_bias into qkv.bias (zero k bias) in {merged} blocks")


def expand_shared_table(out: ConvertedCheckpoint) -> None:
    """BEiT's shared relative position table becomes a copy in every block."""
    sd = out.state_dict
    if _SHARED_TABLE not in sd:
        return
    table = sd.pop(_SHARED_TABLE)
    original = out.origin.pop(_SHARED_TABLE)
    per_block = [k for k in sd if k.endswith(".attn.relative_position_bias_table")]
    if per_block:
        out.dropped.append(DroppedKey(original, "shared table ignored: per-block tables present"))
        return
    blocks = sorted({int(m.group(1)) for k in sd if (m := re.match(r"^blocks\.(\d+)\.", k))})
    for i in blocks:
        name = f"blocks.{i}.attn.relative_position_bias_table"
        sd[name] = table.clone()
        out.origin[name] = original
    out.notes.append(f"copied the shared relative position table into {len(blocks)} blocks")


def _drop_distillation_slot(out: ConvertedCheckpoint, detected: DetectedCheckpoint) -> None:
    """DeiT's pos_embed has a slot for the distillation token after the cls slot; remove it."""
    if detected.format != "deit_distilled" or "pos_embed" not in out.state_dict:
        return
    pos = out.state_dict["pos_embed"]
    if pos.dim() == 3 and square_grid(pos.shape[1] - 2) is not None:
        out.state_dict["pos_embed"] = torch.cat([pos[:, :1], pos[:, 2:]], dim=1)
        out.notes.append(
            f"removed the distillation-token slot from pos_embed: {tuple(pos.shape)} -> "
            f"{tuple(out.state_dict['pos_embed'].shape)}"
        )
