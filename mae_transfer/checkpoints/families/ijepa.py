"""I-JEPA training checkpoints (``IN1K-vit.h.14-300e.pth.tar``): ``ckpt['encoder']`` with ``module.`` keys.

Family ijepa: no class token, a fixed sin-cos ``pos_embed`` (1, N, D) without cls slot, timm
block names (``facebookresearch/ijepa`` ``src/models/vision_transformer.py``). The context
``encoder`` is read, as transformers' ``convert_ijepa_to_hf.py`` and timm's
``checkpoint_filter_fn`` do; the EMA ``target_encoder``, the ``predictor`` and the optimizer
state are listed as dropped.
"""

from __future__ import annotations

from mae_transfer.checkpoints.convert import ConvertedCheckpoint
from mae_transfer.checkpoints.families.contract import CheckpointFile, Conversion, FamilyReader

_REASONS = {
    "target_encoder": "EMA target encoder (transformers and timm convert 'encoder')",
    "predictor": "I-JEPA predictor of pre-training",
}


class IJepaReader(FamilyReader):
    format = "ijepa"
    description = "official I-JEPA checkpoint ('encoder', 'module.' prefix)"

    def recognise(self, file: CheckpointFile) -> bool:
        encoder = file.tensors("encoder")
        return bool(encoder) and any(k.startswith(("module.blocks.0.", "blocks.0.")) for k in encoder)

    def read(self, file: CheckpointFile) -> ConvertedCheckpoint:
        conversion = Conversion(file, self.format, "ijepa")
        for key in file.obj:
            if key != "encoder":
                conversion.drop(key, _REASONS.get(key, "training state, not the encoder"))
        conversion.rename_all(file.tensors("encoder"), lambda k: k[len("module."):] if k.startswith("module.") else k,
                              ())
        return conversion.result()
