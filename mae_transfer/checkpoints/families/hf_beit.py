"""HuggingFace ``BeitModel`` and ``Data2VecVisionModel`` directories (family beit).

LayerScale (``lambda_1``/``lambda_2``), a key projection without bias (the fused qkv bias gets
a zero k part), per-block relative position tables or one shared table
(``use_shared_relative_position_bias``, copied into every block by the canonical conversion),
no absolute position embedding unless ``use_absolute_position_embeddings``. With
``use_mean_pooling`` the final norm is ``pooler.layernorm`` (``fc_norm``), as in BEiT's
fine-tuned models.
"""

from __future__ import annotations

import torch

from mae_transfer.checkpoints.convert import ConvertedCheckpoint, expand_shared_table
from mae_transfer.checkpoints.families.contract import CheckpointFile, Conversion
from mae_transfer.checkpoints.families.hf_config import HFReader
from mae_transfer.checkpoints.families.hf_layers import convert_hf_vit


class HFBeitReader(HFReader):
    format = "hf_beit"
    description = "HuggingFace BEiT / data2vec-vision directory"
    model_types = {"beit": "beit", "data2vec-vision": "beit"}

    def convert(self, file: CheckpointFile, conversion: Conversion, tensors: dict[str, torch.Tensor]) -> None:
        convert_hf_vit(file, conversion, tensors)

    def read(self, file: CheckpointFile) -> ConvertedCheckpoint:
        converted = super().read(file)
        expand_shared_table(converted)
        if "pos_embed" not in converted.state_dict:
            converted.zero_pos_embed = True
            converted.notes.append("BEiT without absolute position embedding: pos_embed = 0")
        return converted
