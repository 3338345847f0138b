"""The family facts of a checkpoint that no family reader claimed (timm, MAE, DeiT, BEiT, OpenMMLab...).

Its structure is read off the converted tensors like every reader's (:func:`.contract.told_options`);
a family is named only where the keys single one out: timm's DINOv2 with registers
(``reg_token``), timm's CLIP (``norm_pre``, a patch embedding without bias: its activation must
be declared), a bare no-class-token ViT (SigLIP or I-JEPA: declare which). Plain timm-named
ViTs are shared by MAE, DeiT, DINO v1 and the supervised ViTs: the family the user builds the
model with decides their position rule.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from mae_transfer.checkpoints.convert import ConvertedCheckpoint
from mae_transfer.checkpoints.families.contract import Conversion, CheckpointFile, told_options
from mae_transfer.checkpoints.families.openai_clip import ACTIVATION_HINT


def describe_generic(converted: ConvertedCheckpoint, metadata: Mapping[str, Any] | None = None) -> ConvertedCheckpoint:
    """``converted`` with ``told``, ``family`` and ``must_declare`` filled in (and a cls slot fixed).

    A canonical checkpoint written by ``mae-transfer convert`` names its family and options in its
    header (``metadata``): they are told, declarations included.
    """
    conversion = Conversion(CheckpointFile(converted.source, converted.container, {}), converted.format, None,
                            state_dict=converted.state_dict, origin=converted.origin, notes=converted.notes)
    result = conversion.result()
    converted.state_dict = result.state_dict
    converted.told = told_options(converted.state_dict)
    told = converted.told
    if converted.format == "beit" or converted.zero_pos_embed:
        converted.family = "beit"
    elif told.get("register_tokens"):
        converted.family = "dinov2_reg"
    elif told.get("pre_norm"):
        converted.family = "clip"
        converted.must_declare["activation"] = ACTIVATION_HINT
    elif told.get("class_token") is False and any(d.key.startswith("attn_pool.") for d in converted.dropped):
        converted.family = "siglip"  # timm's SigLIP keeps its attention-pooling head; I-JEPA has none
    elif told.get("class_token") is False and converted.format == "timm":
        converted.must_declare["family"] = "siglip (tanh GELU) or ijepa (GELU): a bare ViT without class token"
    elif told.get("mlp") == "swiglu" or (_has_layer_scale(converted) and _patch(converted) == 14):
        converted.family = "dinov2"  # timm's *_dinov2: LayerScale at patch 14 (DeiT III has patch 16)
    header = {key.removeprefix("mae_transfer_"): value for key, value in (metadata or {}).items()}
    if converted.format == "canonical" and header.get("family"):
        converted.family = header["family"]
        converted.must_declare.clear()
        options = json.loads(header["options"]) if header.get("options") else {}
        converted.told.update({key: options[key] for key in ("activation", "norm_eps") if key in options})
    return converted


def _has_layer_scale(converted: ConvertedCheckpoint) -> bool:
    return "blocks.0.ls1.gamma" in converted.state_dict


def _patch(converted: ConvertedCheckpoint) -> int | None:
    weight = converted.state_dict.get("patch_embed.proj.weight")
    return int(weight.shape[-1]) if weight is not None and weight.dim() == 4 else None
