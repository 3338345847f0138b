"""One builder per family and file layout: the reference model, the saved file, our encoder's declaration."""

from __future__ import annotations

from pathlib import Path

import torch

from reference_models import (
    DEPTH, WIDTH, Reference, disk_state, hf_config_kwargs, hf_tokens, official_dinov2_state, open_clip_tiny,
    randomize, save_hf, tiny_shape,
)


def hf_vitmae(root: Path, layout: str) -> Reference:
    from transformers import ViTMAEConfig, ViTMAEForPreTraining

    config = ViTMAEConfig(**hf_config_kwargs(16, 64, mask_ratio=0.0, layer_norm_eps=1e-6, decoder_hidden_size=32,
                                             decoder_num_hidden_layers=1, decoder_num_attention_heads=2,
                                             decoder_intermediate_size=64))
    model = randomize(ViTMAEForPreTraining(config))

    def tokens(images: torch.Tensor) -> torch.Tensor:
        noise = torch.arange(images.shape[-1] // 16 * images.shape[-2] // 16, dtype=torch.float).expand(len(images), -1)
        with torch.no_grad():  # noise in increasing order keeps every patch in place (mask_ratio 0)
            return model.vit(pixel_values=images, noise=noise, interpolate_pos_encoding=True).last_hidden_state
    return Reference(save_hf(model, root, layout), {"family": "mae", **tiny_shape(16, 64)}, tokens, 64, 96)


def hf_vit(root: Path, layout: str) -> Reference:
    from transformers import ViTConfig, ViTModel

    model = randomize(ViTModel(ViTConfig(**hf_config_kwargs(16, 64)), add_pooling_layer=True))
    # layer_norm_eps stays transformers' default 1e-12: read from config.json, not assumed
    return Reference(save_hf(model, root, layout), {"family": "mae", "norm_eps": 1e-12, **tiny_shape(16, 64)},
                     hf_tokens(model), 64, 96)


def hf_dinov2(root: Path, layout: str, swiglu: bool = False) -> Reference:
    from transformers import Dinov2Config, Dinov2Model

    model = randomize(Dinov2Model(Dinov2Config(**hf_config_kwargs(14, 56, use_swiglu_ffn=swiglu))))
    shape = tiny_shape(14, 56)
    options = {"options": {"mlp": "swiglu", "pos_rule": "dino_offset", "probe_feature": "cls+avg"}} if swiglu else {}
    # transformers 5.x resamples Dinov2's table by size (no +0.1 offset): not the original's rule, see the test
    return Reference(save_hf(model, root, layout), {"family": "dinov2", **options, **shape, "layer_scale_init": 1.0},
                     hf_tokens(model), 56, None)


def hf_dinov2_reg(root: Path, layout: str) -> Reference:
    from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersModel

    model = randomize(Dinov2WithRegistersModel(Dinov2WithRegistersConfig(**hf_config_kwargs(14, 56))))
    return Reference(save_hf(model, root, layout), {"family": "dinov2_reg", **tiny_shape(14, 56)},
                     hf_tokens(model), 56, 84)


def dinov2_hub(root: Path, registers: bool) -> Reference:
    """The official hub file ({'...': tensors}, dinov2 naming) written from transformers' weights."""
    from transformers import Dinov2Config, Dinov2Model, Dinov2WithRegistersConfig, Dinov2WithRegistersModel

    config_cls, model_cls = (Dinov2WithRegistersConfig, Dinov2WithRegistersModel) if registers else (
        Dinov2Config, Dinov2Model)
    model = randomize(model_cls(config_cls(**hf_config_kwargs(14, 56))))
    path = root / "dinov2_vits14_pretrain.pth"
    torch.save(official_dinov2_state(disk_state(model, root / "hf")), path)
    family = "dinov2_reg" if registers else "dinov2"
    return Reference(path, {"family": family, **tiny_shape(14, 56)}, hf_tokens(model), 56, 84 if registers else None)


def hf_clip(root: Path, layout: str) -> Reference:
    from transformers import CLIPVisionConfig, CLIPVisionModel

    model = randomize(CLIPVisionModel(CLIPVisionConfig(**hf_config_kwargs(16, 64, hidden_act="quick_gelu"))))

    def pooled(ours: torch.Tensor, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            return ours[:, 0], model(pixel_values=images, interpolate_pos_encoding=True).pooler_output
    # transformers' last_hidden_state is before post_layernorm, which it applies to the pooled cls token only
    return Reference(save_hf(model, root, layout), {"family": "clip", "activation": "quick_gelu", **tiny_shape(16, 64)},
                     None, 64, 96, pre_norm_tokens=hf_tokens(model), pooled=pooled)


def hf_siglip(root: Path, layout: str) -> Reference:
    from transformers import SiglipVisionConfig, SiglipVisionModel

    model = randomize(SiglipVisionModel(SiglipVisionConfig(**hf_config_kwargs(16, 64))))
    return Reference(save_hf(model, root, layout), {"family": "siglip", **tiny_shape(16, 64)}, hf_tokens(model), 64, 96)


def hf_ijepa(root: Path, layout: str) -> Reference:
    from transformers import IJepaConfig, IJepaModel

    model = randomize(IJepaModel(IJepaConfig(**hf_config_kwargs(16, 64, layer_norm_eps=1e-6))))
    return Reference(save_hf(model, root, layout), {"family": "ijepa", **tiny_shape(16, 64)}, hf_tokens(model), 64, 96)


def hf_beit(root: Path, layout: str, data2vec: bool = False) -> Reference:
    """BEiT with one shared relative position table (pre-training layout); data2vec with per-block tables
    and mean pooling (fine-tuning layout). BEiT resamples its tables on its own way: native size only."""
    if data2vec:
        from transformers import Data2VecVisionConfig as Config, Data2VecVisionModel as Model
        extra = {"use_relative_position_bias": True, "use_mean_pooling": True}
    else:
        from transformers import BeitConfig as Config, BeitModel as Model
        extra = {"use_shared_relative_position_bias": True, "use_mean_pooling": False}
    model = randomize(Model(Config(**hf_config_kwargs(16, 64, layer_norm_eps=1e-6, **extra)),
                            add_pooling_layer=data2vec))

    def pre_norm(images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(pixel_values=images, output_hidden_states=True).hidden_states[-1]
    tokens = None if data2vec else hf_tokens(model)
    return Reference(save_hf(model, root, layout), {"family": "beit", **tiny_shape(16, 64)}, tokens, 64, None,
                     pre_norm_tokens=pre_norm)


# ---------------------------------------------------------------- timm and the official raw layouts

def timm_model(name: str, size: int, **kwargs) -> torch.nn.Module:
    import timm

    return randomize(timm.create_model(name, pretrained=False, num_classes=0, img_size=size, depth=DEPTH,
                                       embed_dim=WIDTH, num_heads=2, **kwargs))


def timm_tokens(model: torch.nn.Module):
    def run(images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model.forward_features(images)
    return run


TIMM = {  # case -> (timm name, patch, size, build keywords)
    "timm_dinov2": ("vit_small_patch14_dinov2", 14, 56, {"family": "dinov2"}),
    "timm_dinov2_reg": ("vit_small_patch14_reg4_dinov2", 14, 56, {"family": "dinov2_reg"}),
    "timm_clip_quickgelu": ("vit_base_patch16_clip_quickgelu_224", 16, 64, {"family": "clip", "activation": "quick_gelu"}),
    "timm_clip_gelu": ("vit_base_patch16_clip_224", 16, 64, {"family": "clip", "activation": "gelu"}),
    "timm_siglip": ("vit_base_patch16_siglip_224", 16, 64, {"family": "siglip"}),
}


def timm_state(root: Path, case: str) -> Reference:
    name, patch, size, build = TIMM[case]
    model = timm_model(name, size)
    path = root / f"{name}.pth"
    torch.save(model.state_dict(), path)
    return Reference(path, {**build, **tiny_shape(patch, size)}, timm_tokens(model), size, None)


def ijepa_official(root: Path) -> Reference:
    """{'encoder': {'module.' + k}, 'predictor', 'target_encoder'}, as I-JEPA's train.py saves it."""
    model = timm_model("vit_base_patch16_224", 64, class_token=False, global_pool="avg", fc_norm=False)
    encoder = {"module." + k: v for k, v in model.state_dict().items()}
    path = root / "IN1K-vit.tiny.16-300e.pth.tar"
    torch.save({"encoder": encoder, "target_encoder": encoder, "predictor": {"module.x": torch.zeros(1)},
                "epoch": 300}, path)
    return Reference(path, {"family": "ijepa", **tiny_shape(16, 64)}, timm_tokens(model), 64, None)


def dino_teacher(root: Path) -> Reference:
    """DINO's full checkpoint: {'student', 'teacher': {'backbone.*', 'head.*'}, ...}; iBOT adds masked_embed."""
    model = timm_model("vit_base_patch16_224", 64)
    teacher = {"backbone." + k: v for k, v in model.state_dict().items()}
    teacher["backbone.masked_embed"] = torch.zeros(WIDTH)
    teacher["head.mlp.0.weight"] = torch.zeros(8, WIDTH)
    path = root / "checkpoint.pth"
    torch.save({"student": {"module." + k: v for k, v in teacher.items()}, "teacher": teacher, "epoch": 100}, path)
    return Reference(path, {"family": "dino", **tiny_shape(16, 64)}, timm_tokens(model), 64, None)


def open_clip_state(root: Path, quick_gelu: bool) -> Reference:
    model = open_clip_tiny(root, quick_gelu)
    path = root / "open_clip_pytorch_model.bin"
    torch.save(model.state_dict(), path)
    visual = model.visual

    def tokens(images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            out = visual.forward_intermediates(images, indices=1, normalize_intermediates=True, output_fmt="NLC",
                                               output_extra_tokens=True)
        return torch.cat([out["image_intermediates_prefix"][-1], out["image_intermediates"][-1]], 1)

    def pooled(ours: torch.Tensor, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            return ours[:, 0] @ visual.proj, visual(images)
    activation = "quick_gelu" if quick_gelu else "gelu"
    return Reference(path, {"family": "clip", "activation": activation, **tiny_shape(16, 64)}, tokens, 64, None,
                     pooled=pooled)


def hf_clip_model(root: Path) -> Reference:
    """The whole ``CLIPModel`` (text tower, projections, logit scale beside ``vision_model.*``)."""
    from transformers import CLIPConfig, CLIPModel

    vision = hf_config_kwargs(16, 64, hidden_act="quick_gelu")
    text = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
            "vocab_size": 64, "max_position_embeddings": 8}
    model = randomize(CLIPModel(CLIPConfig(vision_config=vision, text_config=text, projection_dim=16)))

    def pooled(ours: torch.Tensor, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            features = model.get_image_features(pixel_values=images)
            features = getattr(features, "pooler_output", features)  # transformers 5.x returns an output object
            return ours[:, 0] @ model.visual_projection.weight.t(), features
    return Reference(save_hf(model, root, "dir"), {"family": "clip", "activation": "quick_gelu", **tiny_shape(16, 64)},
                     None, 64, None, pooled=pooled)
