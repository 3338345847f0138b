"""HuggingFace ViT, DeiT, ViTMAE (``ViTMAEModel`` / ``ViTMAEForPreTraining``), ViT-MSN and I-JEPA directories.

One encoder layout (:mod:`.hf_layers`); the model type names the family: ViT, DeiT, ViT-MSN and
ViTMAE read as ``mae`` (plain ViT with a class token), I-JEPA (``IJepaModel``: no class token,
a position table without cls slot) as ``ijepa``. ViTMAE's ``decoder.*`` is dropped.
"""

from __future__ import annotations

import torch

from mae_transfer.checkpoints.families.contract import CheckpointFile, Conversion
from mae_transfer.checkpoints.families.hf_config import HFReader
from mae_transfer.checkpoints.families.hf_layers import convert_hf_vit


class HFViTReader(HFReader):
    format = "hf_vit"
    description = "HuggingFace ViT / DeiT / ViTMAE / ViT-MSN / I-JEPA directory"
    model_types = {"vit": "mae", "deit": "mae", "vit_mae": "mae", "vit_msn": "mae", "ijepa": "ijepa"}

    def convert(self, file: CheckpointFile, conversion: Conversion, tensors: dict[str, torch.Tensor]) -> None:
        convert_hf_vit(file, conversion, tensors)
        if "dist_token" in conversion.state_dict or any(k.endswith("distillation_token") for k in tensors):
            conversion.notes.append("DeiT distillation token present")
