"""Official DINOv2 hub files (``dinov2_vit{s,b,l,g}14[_reg4]_pretrain.pth``): family dinov2 / dinov2_reg.

A bare state dict in timm naming (``facebookresearch/dinov2`` ``models/vision_transformer.py``)
with ``mask_token`` (dropped: iBOT-style masking in pre-training), LayerScale ``ls{1,2}.gamma``,
``pos_embed`` for 518 px (37 x 37 + 1), optional ``register_tokens`` (1, 4, D), which get no
position embedding, and for the giant a SwiGLU MLP ``mlp.w12`` (packed gate and value) /
``mlp.w3``, read as timm's ``mlp.fc1`` / ``mlp.fc2``.
"""

from __future__ import annotations

import re

from mae_transfer.checkpoints.convert import ConvertedCheckpoint
from mae_transfer.checkpoints.families.contract import CheckpointFile, Conversion, FamilyReader

_TIMM_NAME = re.compile(r"^(cls_token|pos_embed|patch_embed\.proj\.(weight|bias)|norm\.(weight|bias)|"
                        r"blocks\.\d+\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.(weight|bias)|"
                        r"blocks\.\d+\.ls[12]\.gamma)$")


class Dinov2HubReader(FamilyReader):
    format = "dinov2"
    description = "official DINOv2 hub weights (with or without registers)"

    def recognise(self, file: CheckpointFile) -> bool:
        tensors = file.tensors()
        return "mask_token" in tensors and "blocks.0.ls1.gamma" in tensors and file.config is None

    def read(self, file: CheckpointFile) -> ConvertedCheckpoint:
        tensors = file.tensors()
        family = "dinov2_reg" if "register_tokens" in tensors else "dinov2"
        conversion = Conversion(file, self.format, family)

        def rename(key: str) -> str | None:
            if key == "register_tokens":
                return "reg_token"
            key = re.sub(r"\.mlp\.w12\.", ".mlp.fc1.", re.sub(r"\.mlp\.w3\.", ".mlp.fc2.", key))
            return key if _TIMM_NAME.match(key) else None

        drops = ((r"^mask_token$", "mask token of masked pre-training (not used on unmasked images)"),)
        conversion.rename_all(tensors, rename, drops)
        return conversion.result()
