"""The adapters' one norm vocabulary: core names and their OpenMMLab ``norm_cfg`` types build the same layer."""

from __future__ import annotations

import pytest
from timm.layers import LayerNorm2d
from torch import nn

from mae_transfer.models.pyramid import NORM_ALIASES, NORMS, make_norm, norm_name


@pytest.mark.parametrize(("kind", "layer"), [("bn", nn.BatchNorm2d), ("BN", nn.BatchNorm2d), ("BN2d", nn.BatchNorm2d),
                                             ("syncbn", nn.SyncBatchNorm), ("SyncBN", nn.SyncBatchNorm),
                                             ("gn", nn.GroupNorm), ("GN", nn.GroupNorm), ("ln", LayerNorm2d),
                                             ("LN2d", LayerNorm2d), ("MAETransferLayerNorm2d", LayerNorm2d),
                                             ("none", nn.Identity)])
def test_every_spelling_builds_its_layer(kind: str, layer: type) -> None:
    assert type(make_norm(kind, 64)) is layer
    assert norm_name(kind) in NORMS


def test_aliases_name_only_vocabulary_norms_and_unknown_spellings_are_refused() -> None:
    assert set(NORM_ALIASES.values()) <= set(NORMS)
    with pytest.raises(ValueError, match=r"unknown norm 'layer'; expected one of bn, syncbn, ln, gn, none .*SyncBN"):
        make_norm("layer", 64)
