"""HuggingFace ``Dinov2Model`` and ``Dinov2WithRegistersModel`` directories (family dinov2 / dinov2_reg).

LayerScale (``layer_scale{1,2}.lambda1``), the mask token dropped, four register tokens
(``embeddings.register_tokens``, no position embedding) for the register model, and the giant's
SwiGLU MLP (``mlp.weights_in``/``weights_out``; in memory ``gate_proj``/``up_proj``/``down_proj``).
"""

from __future__ import annotations

import torch

from mae_transfer.checkpoints.families.contract import CheckpointFile, Conversion
from mae_transfer.checkpoints.families.hf_config import HFReader
from mae_transfer.checkpoints.families.hf_layers import convert_hf_vit


class HFDinov2Reader(HFReader):
    format = "hf_dinov2"
    description = "HuggingFace Dinov2 / Dinov2WithRegisters directory"
    model_types = {"dinov2": "dinov2", "dinov2_with_registers": "dinov2_reg"}

    def convert(self, file: CheckpointFile, conversion: Conversion, tensors: dict[str, torch.Tensor]) -> None:
        convert_hf_vit(file, conversion, tensors)
