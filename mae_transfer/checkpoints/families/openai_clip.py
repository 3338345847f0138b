"""OpenAI CLIP and open_clip state dicts: the image tower under ``visual.`` (or ``module.visual.``), family clip.

Names (OpenAI ``clip/model.py`` ``VisionTransformer``; open_clip ``transformer.py``):
``class_embedding`` (D), ``positional_embedding`` (N + 1, D), ``conv1`` without bias,
``ln_pre`` (norm before the blocks), ``transformer.resblocks.{i}.{ln_1, attn.in_proj_weight /
in_proj_bias (fused q, k, v), attn.out_proj, ln_2, mlp.c_fc, mlp.c_proj}``, open_clip's
optional ``ls_1`` / ``ls_2`` LayerScale, ``ln_post`` and ``proj``. ``proj`` (into the joint
image-text space), the text tower and ``logit_scale`` are dropped. The activation is not in the
weights (QuickGELU for OpenAI's and open_clip's ``-quickgelu`` models, GELU for the others):
it must be declared. OpenAI's TorchScript ``.pt`` archives are not state dicts; load them with
``clip.load(..., jit=False)`` and save ``model.state_dict()``.
"""

from __future__ import annotations

import re

from mae_transfer.checkpoints.convert import ConvertedCheckpoint
from mae_transfer.checkpoints.families.contract import CheckpointFile, Conversion, FamilyReader

_SWAPS = (
    ("conv1.", "patch_embed.proj."),
    ("ln_pre.", "norm_pre."),
    ("ln_post.", "norm."),
    ("transformer.resblocks.", "blocks."),
)
_IN_BLOCK = (
    ("ln_1.", "norm1."), ("ln_2.", "norm2."), ("attn.in_proj_weight", "attn.qkv.weight"),
    ("attn.in_proj_bias", "attn.qkv.bias"), ("attn.out_proj.", "attn.proj."), ("mlp.c_fc.", "mlp.fc1."),
    ("mlp.c_proj.", "mlp.fc2."), ("ls_1.gamma", "ls1.gamma"), ("ls_2.gamma", "ls2.gamma"),
)
_BLOCK = re.compile(r"^blocks\.(\d+)\.(.+)$")
ACTIVATION_HINT = ("quick_gelu for OpenAI CLIP weights and open_clip '-quickgelu' models, gelu for the other "
                   "open_clip and LAION weights (open_clip picks it by model name)")


class OpenAIClipReader(FamilyReader):
    format = "openai_clip"
    description = "OpenAI CLIP / open_clip state dict (visual.*)"

    def recognise(self, file: CheckpointFile) -> bool:
        return any(k.endswith("visual.conv1.weight") for k in file.tensors()) and file.config is None

    def read(self, file: CheckpointFile) -> ConvertedCheckpoint:
        tensors = file.tensors()
        prefix = "module.visual." if any(k.startswith("module.visual.") for k in tensors) else "visual."
        conversion = Conversion(file, self.format, "clip")
        conversion.must_declare["activation"] = ACTIVATION_HINT
        for key, value in tensors.items():
            if not key.startswith(prefix):
                conversion.drop(key, "logit scale" if key.endswith("logit_scale") else "text tower")
                continue
            name = key[len(prefix):]
            if name == "proj":
                conversion.drop(key, "projection into the joint image-text embedding (not the encoder's tokens)")
            elif name == "class_embedding":
                conversion.put("cls_token", value.reshape(1, 1, -1), key)
            elif name == "positional_embedding":
                conversion.put("pos_embed", value.unsqueeze(0), key)
            else:
                conversion.rename_all({key: value}, lambda _k: _rename(name), ())
        return conversion.result()


def _rename(name: str) -> str | None:
    for old, new in _SWAPS:
        if name.startswith(old):
            name = new + name[len(old):]
            break
    match = _BLOCK.match(name)
    if match is None:
        return name if name.startswith(("patch_embed.proj.weight", "norm_pre.", "norm.")) else None
    rest = match.group(2)
    target = next((new + rest[len(old):] for old, new in _IN_BLOCK if rest.startswith(old)), None)
    return f"blocks.{match.group(1)}.{target}" if target else None
