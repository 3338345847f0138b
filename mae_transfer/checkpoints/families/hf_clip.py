"""HuggingFace CLIP (``CLIPModel``'s ``vision_model.*``, ``CLIPVisionModel``) and SigLIP vision directories.

Both use ``[vision_model.]embeddings.{patch_embedding, position_embedding}``, ``pre_layrnorm``
(sic, CLIP only), ``encoder.layers.{i}.{layer_norm1, self_attn.{q,k,v,out}_proj, layer_norm2,
mlp.fc1, mlp.fc2}`` and ``post_layernorm``. CLIP: a class embedding ``(D,)``, a patch
convolution without bias; ``post_layernorm`` is applied to the pooled class token in
transformers, which is the suite's final norm read at the cls position. SigLIP: no class token,
a position table without cls slot, and an attention-pooling head (``head.*``) that the suite's
tasks do not use (dropped). The text tower, the projections and ``logit_scale`` are dropped.
"""

from __future__ import annotations

import re

import torch

from mae_transfer.checkpoints.families.contract import CheckpointFile, Conversion
from mae_transfer.checkpoints.families.hf_config import HFReader

_BLOCK = re.compile(r"^encoder\.layers\.(\d+)\.(.+)$")
_QKV = re.compile(r"^self_attn\.(q|k|v)_proj\.(weight|bias)$")
_IN_BLOCK = (("self_attn.out_proj.", "attn.proj."), ("layer_norm1.", "norm1."), ("layer_norm2.", "norm2."),
             ("mlp.fc1.", "mlp.fc1."), ("mlp.fc2.", "mlp.fc2."))
_TOP = {
    "embeddings.patch_embedding.weight": "patch_embed.proj.weight",
    "embeddings.patch_embedding.bias": "patch_embed.proj.bias",
    "pre_layrnorm.weight": "norm_pre.weight",
    "pre_layrnorm.bias": "norm_pre.bias",
    "post_layernorm.weight": "norm.weight",
    "post_layernorm.bias": "norm.bias",
}
_OUTSIDE = (
    (r"^text_model\.", "text tower"),
    (r"^(visual|text)_projection\.", "projection into the joint image-text embedding"),
    (r"^logit_(scale|bias)$", "contrastive loss temperature/bias"),
)
_OUTSIDE_ANY = "|".join(pattern for pattern, _ in _OUTSIDE)
_INSIDE = (
    (r"^head\.", "SigLIP attention-pooling (MAP) head; the suite's tasks pool the tokens themselves"),
    (r"position_ids$", "derived index buffer"),
)


class HFClipReader(HFReader):
    format = "hf_clip"
    description = "HuggingFace CLIP / SigLIP vision directory"
    model_types = {"clip": "clip", "clip_vision_model": "clip", "siglip": "siglip", "siglip_vision_model": "siglip"}

    def convert(self, file: CheckpointFile, conversion: Conversion, tensors: dict[str, torch.Tensor]) -> None:
        qkv: dict[int, dict[str, dict[str, torch.Tensor]]] = {}
        # CLIPModel/SiglipModel nest the tower under 'vision_model.'; the vision-only models of
        # transformers 5.x save it at the top level
        prefix = "vision_model." if any(k.startswith("vision_model.") for k in tensors) else ""
        for key, value in tensors.items():
            if not key.startswith(prefix) or re.search(_OUTSIDE_ANY, key):
                reason = next((why for pattern, why in _OUTSIDE if re.search(pattern, key)), None)
                conversion.drop(key, reason or "outside the vision tower 'vision_model.'")
                continue
            inner = key[len(prefix):]
            reason = next((why for pattern, why in _INSIDE if re.search(pattern, inner)), None)
            if reason is not None:
                conversion.drop(key, reason)
            elif inner == "embeddings.class_embedding":
                conversion.put("cls_token", value.reshape(1, 1, -1), key)
            elif inner == "embeddings.position_embedding.weight":
                conversion.put("pos_embed", value.unsqueeze(0), key)
            elif inner in _TOP:
                conversion.put(_TOP[inner], value, key)
            elif (match := _BLOCK.match(inner)) is not None:
                block, rest = int(match.group(1)), match.group(2)
                if (part := _QKV.match(rest)) is not None:
                    qkv.setdefault(block, {}).setdefault(part.group(1), {})[part.group(2)] = value
                    continue
                target = next((new + rest[len(old):] for old, new in _IN_BLOCK if rest.startswith(old)), None)
                if target is None:
                    conversion.rename_all({key: value}, lambda _: None, ())
                conversion.put(f"blocks.{block}.{target}", value, key)
            else:
                conversion.rename_all({key: value}, lambda _: None, ())
        conversion.fuse_qkv(qkv)
