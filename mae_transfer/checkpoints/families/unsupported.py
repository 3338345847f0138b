"""Architectures the suite recognises but does not implement: refused by name, never half-loaded.

- EVA-02 / EVA-CLIP / DINOv3: rotary position embeddings (``rope``), not a plain ViT (timm
  ``eva.py``).
- SwiGLU MLPs other than DINOv2-g's packed ``w12``/``w3``: EVA-02's ``mlp.w1``/``w2``/``w3``
  with ``ffn_ln``, timm's ``mlp.fc1_g``/``fc1_x`` (AIMv2, EVA); DINOv2-g's is implemented.
- data2vec 2.0 (fairseq ``modality_encoders.IMAGE``): post-norm blocks and a convolutional
  decoder; only data2vec (1.0) vision through BEiT's layout is implemented.
"""

from __future__ import annotations

import re

from mae_transfer.checkpoints.convert import ConvertedCheckpoint
from mae_transfer.checkpoints.errors import CheckpointError
from mae_transfer.checkpoints.families.contract import CheckpointFile, FamilyReader

# (name, key pattern, what to say)
_UNSUPPORTED = (
    ("EVA-02 / DINOv3 rotary position embeddings", re.compile(r"(^|\.)rope(\.|$)|freqs_(cos|sin)$|\.rope\."),
     "rotary position embeddings are not a plain ViT (timm eva.py); not implemented"),
    ("SwiGLU MLP outside DINOv2-g", re.compile(r"\.mlp\.(w1|w2|fc1_g|fc1_x|ffn_ln)\.|\.mlp\.ffn_ln\."),
     "only DINOv2-g's packed SwiGLU (mlp.w12 / mlp.w3, or HF weights_in / weights_out) is implemented"),
    ("data2vec 2.0", re.compile(r"^(module\.)?modality_encoders\.|^(model\.)?modality_encoders\."),
     "data2vec 2.0's post-norm blocks are not implemented (data2vec 1.0 vision loads through the BEiT layout)"),
)


class UnsupportedReader(FamilyReader):
    format = "unsupported"
    description = "recognised architecture the suite does not implement"

    def recognise(self, file: CheckpointFile) -> bool:
        return self._match(file) is not None

    def read(self, file: CheckpointFile) -> ConvertedCheckpoint:
        name, key, why = self._match(file)
        raise CheckpointError(f"{name} is not supported: {why}", file=file.source, key=key)

    @staticmethod
    def _match(file: CheckpointFile) -> tuple[str, str, str] | None:
        keys = list(_all_keys(file.obj))
        for name, pattern, why in _UNSUPPORTED:
            key = next((k for k in keys if pattern.search(k)), None)
            if key is not None:
                return name, key, why
        return None


def _all_keys(obj, depth: int = 0):
    """Keys of the top level and of nested dicts (``model``, ``state_dict``...), two levels deep."""
    for key, value in obj.items():
        yield str(key)
        if isinstance(value, dict) and depth < 1:
            yield from _all_keys(value, depth + 1)
