"""The mmdet and mmseg backbones share one arch check and one pretrained-source rule."""

from __future__ import annotations

import pytest

from mae_transfer.integrations.backbone_common import split_pretrained
from mae_transfer.integrations.mmdet import MAETransferViT
from mae_transfer.integrations.mmseg import MAETransferSegViT

BACKBONES = (MAETransferViT, MAETransferSegViT)


def test_pretrained_entry_is_taken_out_of_init_cfg() -> None:
    init_cfg = [dict(type="Pretrained", checkpoint="a.pth"), dict(type="Normal", layer="Linear")]
    assert split_pretrained("X", None, init_cfg) == ("a.pth", [dict(type="Normal", layer="Linear")])
    assert split_pretrained("X", "a.pth", dict(type="Pretrained", checkpoint="a.pth")) == ("a.pth", None)
    assert split_pretrained("X", "b.pth", None) == ("b.pth", None)


@pytest.mark.parametrize("backbone", BACKBONES, ids=lambda cls: cls.__name__)
def test_two_different_checkpoints_are_refused_naming_the_backbone(backbone: type) -> None:
    with pytest.raises(ValueError, match=rf"^{backbone.__name__}: both pretrained='a.pth' .* 'b.pth' are set"):
        backbone(pretrained="a.pth", init_cfg=dict(type="Pretrained", checkpoint="b.pth"))


@pytest.mark.parametrize("backbone", BACKBONES, ids=lambda cls: cls.__name__)
def test_unknown_arch_is_refused_naming_the_backbone(backbone: type) -> None:
    with pytest.raises(ValueError, match=rf"^{backbone.__name__}: unknown arch 'vit_giant'; expected one of"):
        backbone(arch="vit_giant")
