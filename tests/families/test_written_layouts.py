"""Generated checkpoints in each family's own layout: read back exactly, and HuggingFace directories read by transformers.

The smoke matrix and rehearsals write their random checkpoints with
``mae_transfer.checkpoints.families.native.write_checkpoint`` in the layout users download. Each
layout must load back into the same encoder bit for bit, named with its format and family, and a
written HuggingFace directory must be what transformers itself builds from it: its outputs equal
ours for the same weights.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mae_transfer.checkpoints import load_pretrained
from mae_transfer.checkpoints.families.native import write_checkpoint
from mae_transfer.checkpoints.layouts import WRITTEN_FORMATS
from mae_transfer.models import build_vit
from mae_transfer.models.options import FAMILIES
from reference_models import randomize, tiny_shape

DECLARED = {"clip": {"activation": "quick_gelu"}}
CASES = [(family, fmt) for family, formats in WRITTEN_FORMATS.items() for fmt in formats]


def _encoder(family: str, seed: int = 0) -> torch.nn.Module:
    patch = 14 if family.startswith("dinov2") else 16
    model = build_vit("vit_base_patch16", family=family, **DECLARED.get(family, {}), **tiny_shape(patch, 4 * patch))
    return randomize(model, seed)


def test_every_family_has_written_layouts() -> None:
    assert set(WRITTEN_FORMATS) == set(FAMILIES)


@pytest.mark.parametrize(("family", "fmt"), CASES, ids=[f"{f}-{m}" for f, m in CASES])
def test_written_layout_loads_back_exactly(family: str, fmt: str, tmp_path: Path) -> None:
    source = _encoder(family)
    path = write_checkpoint(source, family, fmt, tmp_path / ("model" if fmt.startswith("hf_") else "model.pth"))
    target = _encoder(family, seed=1)
    report = load_pretrained(target, path)
    assert report.format == fmt and not report.missing
    # a timm-named dict (MAE's {'model': ...} too) names its family only where its keys single one out
    assert report.family in ((family, None) if fmt in ("mae", "timm") else (family,))
    assert report.model_family == family
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


@pytest.mark.parametrize("family", ["dinov2", "dinov2_reg", "clip", "siglip"])
def test_written_hf_directory_is_what_transformers_builds(family: str, tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    import transformers

    model = _encoder(family).eval()
    fmt = "hf_dinov2" if family.startswith("dinov2") else "hf_clip"
    folder = write_checkpoint(model, family, fmt, tmp_path / family)
    classes = {"dinov2": transformers.Dinov2Model, "dinov2_reg": transformers.Dinov2WithRegistersModel,
               "clip": transformers.CLIPVisionModel, "siglip": transformers.SiglipVisionModel}
    reference = classes[family].from_pretrained(folder).eval()
    size = model.grid_size[0] * model.patch_size
    images = torch.randn(2, 3, size, size)
    with torch.no_grad():
        ours = model.forward_features(images)
        theirs = reference(pixel_values=images)
    if family == "clip":  # transformers' last_hidden_state precedes post_layernorm, applied to the pooled cls only
        torch.testing.assert_close(ours[:, 0], theirs.pooler_output, atol=1e-5, rtol=0)
    else:
        torch.testing.assert_close(ours, theirs.last_hidden_state, atol=1e-5, rtol=0)
