"""One small reader per ViT family behind one contract (:mod:`.contract`).

``READERS`` is tried in order on every file; the first that recognises its layout converts it.
Files that none recognises go through the generic timm/MAE/OpenMMLab path
(:mod:`mae_transfer.checkpoints.formats` and :mod:`~mae_transfer.checkpoints.convert`), whose
structural options are read off the tensors the same way.

Adding a family: one module with a :class:`~.contract.FamilyReader`, one entry here, one test.
"""

from __future__ import annotations

from mae_transfer.checkpoints.convert import ConvertedCheckpoint
from mae_transfer.checkpoints.families.contract import CheckpointFile, FamilyReader
from mae_transfer.checkpoints.families.dino import DinoTeacherReader
from mae_transfer.checkpoints.families.dinov2_hub import Dinov2HubReader
from mae_transfer.checkpoints.families.hf_beit import HFBeitReader
from mae_transfer.checkpoints.families.hf_clip import HFClipReader
from mae_transfer.checkpoints.families.hf_dinov2 import HFDinov2Reader
from mae_transfer.checkpoints.families.hf_vit import HFViTReader
from mae_transfer.checkpoints.families.ijepa import IJepaReader
from mae_transfer.checkpoints.families.openai_clip import OpenAIClipReader
from mae_transfer.checkpoints.families.unsupported import UnsupportedReader

__all__ = ["READERS", "CheckpointFile", "FamilyReader", "read_family"]

# The refusal of unimplemented architectures comes first: nothing of theirs is half-read.
READERS: tuple[FamilyReader, ...] = (
    UnsupportedReader(), HFViTReader(), HFDinov2Reader(), HFClipReader(), HFBeitReader(),
    Dinov2HubReader(), DinoTeacherReader(), IJepaReader(), OpenAIClipReader(),
)


def read_family(file: CheckpointFile) -> ConvertedCheckpoint | None:
    """The first reader's conversion of ``file``, or None when no family reader recognises it."""
    for reader in READERS:
        if reader.recognise(file):
            return reader.read(file)
    return None
