"""Every family and file layout loads exactly: the suite's encoder equals the family's own client.

For each case a tiny reference (width 64, depth 2, random weights) is built offline with
transformers, timm or open_clip, saved in the layout users download (``save_pretrained``
directories, a state dict with its ``config.json`` beside it in transformers 5.x in-memory
names, the official DINOv2 / I-JEPA / DINO files, timm and open_clip state dicts), loaded
through ``load_pretrained`` into ``build_vit(..., family=...)``, and the token outputs compared
at the native resolution and, where the family's client resamples its position table, at
another resolution by the family's own rule.

CLIP at another resolution is compared against open_clip's load-time resampling (bicubic with
antialias, ``open_clip.model.resize_pos_embed``; OpenAI's own code never resamples), which
differs from transformers' ``CLIPVisionModel`` run-time rule (bicubic without antialias: PyTorch
uses another cubic kernel with antialias, so the two differ also when upsampling).

Not compared at another resolution: DINOv2 without registers (transformers 5.x and timm resample
by size; the original resamples by ``scale_factor`` with a +0.1 offset, which the suite follows:
see ``test_dinov2_rule_is_the_original_not_transformers``), BEiT/data2vec (their relative
position tables are resampled by their own code, not implemented here) and the raw state dicts
(their clients do not resample at run time).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import family_cases as cases
from mae_transfer.checkpoints import load_pretrained
from mae_transfer.models import build_vit

pytest.importorskip("transformers")
pytest.importorskip("open_clip")

BUILDERS = {
    "hf_vitmae_dir": lambda root: cases.hf_vitmae(root, "dir"),
    "hf_vitmae_memory": lambda root: cases.hf_vitmae(root, "memory"),
    "hf_vit_dir": lambda root: cases.hf_vit(root, "dir"),
    "hf_dinov2_dir": lambda root: cases.hf_dinov2(root, "dir"),
    "hf_dinov2_memory": lambda root: cases.hf_dinov2(root, "memory"),
    "hf_dinov2_swiglu_dir": lambda root: cases.hf_dinov2(root, "dir", swiglu=True),
    "hf_dinov2_swiglu_memory": lambda root: cases.hf_dinov2(root, "memory", swiglu=True),
    "hf_dinov2_reg_dir": lambda root: cases.hf_dinov2_reg(root, "dir"),
    "hf_dinov2_reg_memory": lambda root: cases.hf_dinov2_reg(root, "memory"),
    "hf_clip_dir": lambda root: cases.hf_clip(root, "dir"),
    "hf_clip_memory": lambda root: cases.hf_clip(root, "memory"),
    "hf_clip_model_dir": cases.hf_clip_model,
    "hf_siglip_dir": lambda root: cases.hf_siglip(root, "dir"),
    "hf_ijepa_dir": lambda root: cases.hf_ijepa(root, "dir"),
    "hf_beit_dir": lambda root: cases.hf_beit(root, "dir"),
    "hf_data2vec_dir": lambda root: cases.hf_beit(root, "dir", data2vec=True),
    "dinov2_hub": lambda root: cases.dinov2_hub(root, registers=False),
    "dinov2_hub_reg": lambda root: cases.dinov2_hub(root, registers=True),
    "ijepa_official": cases.ijepa_official,
    "dino_teacher": cases.dino_teacher,
    "open_clip_quickgelu": lambda root: cases.open_clip_state(root, quick_gelu=True),
    "open_clip_gelu": lambda root: cases.open_clip_state(root, quick_gelu=False),
    **{name: (lambda root, name=name: cases.timm_state(root, name)) for name in cases.TIMM},
}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """case -> (reference, our loaded encoder, load report), built once per case."""
    built = {}

    def get(case: str):
        if case not in built:
            torch.manual_seed(0)
            reference = BUILDERS[case](tmp_path_factory.mktemp(case))
            ours = build_vit("vit_base_patch16", **reference.build).eval()
            report = load_pretrained(ours, reference.path)
            built[case] = (reference, ours, report)
        return built[case]
    return get


def _compare(reference, ours, size: int) -> None:
    images = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(size))
    with torch.no_grad():
        final, blocks = ours.forward_features(images), ours.forward_blocks(images)
    compared = 0
    if reference.tokens is not None:
        torch.testing.assert_close(final, reference.tokens(images), atol=reference.atol, rtol=0)
        compared += 1
    if reference.pre_norm_tokens is not None:
        torch.testing.assert_close(blocks, reference.pre_norm_tokens(images), atol=reference.atol, rtol=0)
        compared += 1
    if reference.pooled is not None:
        mine, theirs = reference.pooled(final, images)
        torch.testing.assert_close(mine, theirs, atol=reference.atol, rtol=0)
        compared += 1
    assert compared


@pytest.mark.parametrize("case", sorted(BUILDERS))
def test_tokens_equal_the_reference_at_native_size(case: str, loaded) -> None:
    reference, ours, report = loaded(case)
    # BEiT has no absolute table (it is zero); a mean-pooling BEiT/data2vec has fc_norm instead of norm
    kept_init = {m.key for m in report.missing if "fc_norm" not in m.reason}
    kept_init -= {"pos_embed"} if report.family == "beit" else set()
    assert report.matched and not kept_init, kept_init
    _compare(reference, ours, reference.size)


@pytest.mark.parametrize("case", sorted(c for c in BUILDERS if c.startswith(("hf_vit", "hf_dinov2_reg", "hf_siglip",
                                                                           "hf_ijepa", "dinov2_hub_reg"))))
def test_tokens_equal_the_reference_at_another_size(case: str, loaded) -> None:
    reference, ours, _ = loaded(case)
    assert reference.other_size is not None
    _compare(reference, ours, reference.other_size)


def test_every_dropped_key_has_a_reason_and_the_family_is_reported(loaded) -> None:
    expected = {"hf_vitmae_dir": ("mae", "decoder."), "hf_dinov2_reg_dir": ("dinov2_reg", "embeddings.mask_token"),
                "hf_siglip_dir": ("siglip", "head."), "ijepa_official": ("ijepa", "target_encoder"),
                "dino_teacher": ("dino", "backbone.masked_embed"), "open_clip_quickgelu": ("clip", "visual.proj"),
                "dinov2_hub_reg": ("dinov2_reg", "mask_token")}
    for case, (family, dropped_prefix) in expected.items():
        _, _, report = loaded(case)
        assert report.family == family, case
        assert any(d.key.startswith(dropped_prefix) and d.reason for d in report.unexpected), (case, report.unexpected)
    _, _, report = loaded("open_clip_quickgelu")
    assert report.declared["activation"] == "quick_gelu"
    _, _, report = loaded("hf_vit_dir")
    assert "norm_eps" not in report.declared  # read from config.json (1e-12), not declared


def test_dinov2_rule_is_the_original_not_transformers(loaded, tmp_path: Path) -> None:
    """At another size the suite resamples DINOv2's table as dinov2's interpolate_pos_encoding does
    (scale_factor (h + 0.1) / H, no antialias); transformers 5.x resamples by size and differs."""
    import torch.nn.functional as F

    reference, ours, _ = loaded("hf_dinov2_dir")
    table = ours.pos_embed[:, 1:].reshape(1, 4, 4, -1).permute(0, 3, 1, 2)
    # dinov2/models/vision_transformer.py: w0 + 0.1 over sqrt(N), mode bicubic, antialias False
    original = F.interpolate(table, scale_factor=((6 + 0.1) / 4, (6 + 0.1) / 4), mode="bicubic", antialias=False)
    resampled = build_vit("vit_base_patch16", **{**reference.build, "img_size": 84})
    loaded_report = load_pretrained(resampled, reference.path)
    grid = resampled.pos_embed[:, 1:].reshape(1, 6, 6, -1).permute(0, 3, 1, 2)
    torch.testing.assert_close(grid, original, atol=1e-6, rtol=0)
    assert any(r.method.startswith("dino_offset") for r in loaded_report.resized)
    images = torch.randn(1, 3, 84, 84)
    with torch.no_grad():
        gap = (ours.forward_features(images) - reference.tokens(images)).abs().max()
    assert gap > 1e-4  # transformers' size-based rule is another network at this size


@pytest.mark.parametrize("quick_gelu", [True, False])
def test_clip_at_another_size_equals_open_clip_loading_the_file(quick_gelu: bool, loaded) -> None:
    import open_clip

    reference, _, _ = loaded("open_clip_quickgelu" if quick_gelu else "open_clip_gelu")
    name = "mt-tiny-16" + ("-quickgelu" if quick_gelu else "")
    theirs = open_clip.create_model(name, pretrained=None, force_image_size=96).eval()
    open_clip.load_checkpoint(theirs, str(reference.path))  # resizes the 4x4 table to 6x6 on load
    ours = build_vit("vit_base_patch16", **{**reference.build, "img_size": 96}).eval()
    report = load_pretrained(ours, reference.path)
    assert [r.method for r in report.resized] == ["bicubic_antialias, cls slot kept"]
    images = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(ours.forward_features(images)[:, 0] @ theirs.visual.proj, theirs.visual(images),
                                   atol=1e-5, rtol=0)


def test_patch14_checkpoint_into_a_windowed_patch16_backbone_as_vitdet_does_for_vit_h(loaded) -> None:
    """COCO runs patch 16: the 14x14 kernel is resized (ViTDet's ViT-H), the table by DINOv2's rule,
    cls and registers are reported as dropped before window attention, LayerScale is loaded."""
    reference, _, _ = loaded("dinov2_hub_reg")
    model = build_vit("vit_base_patch16", **{**reference.build, "patch_size": 16, "img_size": 96},
                      window={"size": 3, "global_blocks": [1]}, maps_only=True)
    report = load_pretrained(model, reference.path)
    resized = {r.key: r.method for r in report.resized}
    assert resized == {"patch_embed.proj.weight": "bicubic patch kernel",
                       "pos_embed": "bicubic_antialias, cls slot kept"}
    dropped = {d.key: d.reason for d in report.unexpected}
    assert "window attention" in dropped["cls_token"] and "register" in dropped["register_tokens"]
    assert "blocks.1.ls2.gamma" in report.matched
    maps = model.forward_maps(torch.randn(1, 3, 96, 128))
    assert [m.shape for m in maps] == [(1, 64, 6, 8)]
