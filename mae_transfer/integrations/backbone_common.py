"""What the mmdet and mmseg MAE ViT backbones share: the arch check and the pretrained load.

Both backbones accept the checkpoint either as ``pretrained=`` or as an mmengine
``init_cfg=dict(type="Pretrained", checkpoint=...)``, read it with
:func:`mae_transfer.checkpoints.load_pretrained` in ``init_weights`` (any format it detects,
no offline conversion) and log its LoadReport.
"""

from __future__ import annotations

import logging
from typing import Any

from mmengine.logging import print_log
from mmengine.model import BaseModule

from mae_transfer import records
from mae_transfer.checkpoints import load_pretrained
from mae_transfer.checkpoints.formats import forced_format
from mae_transfer.models import ARCHS, MAEViT, ViTArch


def split_pretrained(owner: str, pretrained: str | None, init_cfg: Any) -> tuple[str | None, Any]:
    """Split a ``dict(type='Pretrained', checkpoint=...)`` init_cfg from the other init configs.

    Returns the checkpoint path (``pretrained`` or the init_cfg's) and the remaining init
    configs (None when none remain); ``owner`` names the backbone in the error raised when both
    are given and differ.
    """
    if init_cfg is None:
        return pretrained, None
    configs = [init_cfg] if isinstance(init_cfg, dict) else list(init_cfg)
    for cfg in configs:
        if cfg.get("type") == "Pretrained":
            checkpoint = cfg.get("checkpoint")
            if pretrained is not None and checkpoint != pretrained:
                raise ValueError(
                    f"{owner}: both pretrained={pretrained!r} and init_cfg checkpoint {checkpoint!r} are set; keep one"
                )
            pretrained = checkpoint
    rest = [cfg for cfg in configs if cfg.get("type") != "Pretrained"]
    return pretrained, rest or None


class PretrainedViTBackbone(BaseModule):
    """Base of the mm* MAE ViT backbones: checks ``arch``, keeps ``pretrained``, loads it.

    Subclasses build ``self.vit`` (an :class:`MAEViT`) in their ``__init__`` after calling this
    one; ``init_weights`` runs the non-pretrained init configs, then loads the checkpoint.

    Args:
        arch: a ``mae_transfer.models.ARCHS`` name; its shape is ``self.arch_shape``.
        pretrained: checkpoint path, or None to keep the random init.
        init_cfg: mmengine init configs; a ``Pretrained`` entry is the same as ``pretrained``.
        pretrained_format: force the checkpoint format (``mae_transfer.checkpoints.formats.FORMATS``);
            None or ``auto``: detected.
    """

    vit: MAEViT

    def __init__(self, arch: str, pretrained: str | None, init_cfg: Any, pretrained_format: str | None = None) -> None:
        name = type(self).__name__
        pretrained, init_cfg = split_pretrained(name, pretrained, init_cfg)
        super().__init__(init_cfg=init_cfg)
        if arch not in ARCHS:
            raise ValueError(f"{name}: unknown arch {arch!r}; expected one of {sorted(ARCHS)}")
        self.arch_shape: ViTArch = ARCHS[arch]
        self.pretrained = pretrained
        self.pretrained_format = forced_format(pretrained_format, f"{name}: pretrained_format")

    def init_weights(self) -> None:
        """Run non-pretrained init configs, then load ``pretrained`` and log its LoadReport."""
        super().init_weights()
        if self.pretrained:
            report = load_pretrained(self.vit, self.pretrained, fmt=self.pretrained_format)
            print_log(
                f"{type(self).__name__}: loaded {self.pretrained}\n{report.render()}",
                logger="current",
                level=logging.INFO,
            )
            records.note_load(report.summary())  # written to the work dir as load_report.json
        self._is_init = True
