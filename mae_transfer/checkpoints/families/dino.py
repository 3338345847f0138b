"""DINO v1 and iBOT training checkpoints: the teacher's backbone (family dino).

The released backbone-only files (``dino_vitbase16_pretrain.pth``) are plain timm-named state
dicts, indistinguishable from MAE's: load them with ``family: dino`` declared (it sets DINO's
position resampling rule). This reader takes the full training checkpoints, whose
``teacher`` (the network DINO and iBOT evaluate) holds ``backbone.*`` and the projection
``head.*`` (dropped), with iBOT's ``backbone.masked_embed`` (dropped); ``student``, optimizer
and loss state are left out, each listed.
"""

from __future__ import annotations

import re

from mae_transfer.checkpoints.convert import ConvertedCheckpoint
from mae_transfer.checkpoints.families.contract import CheckpointFile, Conversion, FamilyReader

_PREFIX = re.compile(r"^(module\.)?backbone\.")


class DinoTeacherReader(FamilyReader):
    format = "dino"
    description = "DINO v1 / iBOT training checkpoint (teacher backbone)"

    def recognise(self, file: CheckpointFile) -> bool:
        teacher = file.tensors("teacher")
        return bool(teacher) and any(_PREFIX.match(k) and ".blocks.0." in k for k in teacher)

    def read(self, file: CheckpointFile) -> ConvertedCheckpoint:
        conversion = Conversion(file, self.format, "dino")
        for key in file.obj:
            if key != "teacher":
                conversion.drop(key, "not the teacher (DINO and iBOT evaluate the teacher network)")
        drops = (
            (r"^(module\.)?head\.", "DINO/iBOT projection head of pre-training"),
            (r"^(module\.)?backbone\.masked_embed$", "iBOT mask embedding of pre-training"),
            (r"^(module\.)?backbone\.head\.", "classifier placeholder of the backbone"),
        )
        conversion.rename_all(file.tensors("teacher"), lambda k: _PREFIX.sub("", k) if _PREFIX.match(k) else None,
                              drops)
        return conversion.result()
