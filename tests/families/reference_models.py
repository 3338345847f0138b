"""Tiny reference models with random weights from the families' own clients, saved as users hold them.

Each builder returns a :class:`Reference`: the file or directory to load, what our encoder must
be built with, and the reference's token outputs (a function of images). transformers, timm and
open_clip build offline with random weights (width 64, depth 2); the official layouts
(DINOv2 hub, I-JEPA, DINO teacher) are written from the same weights in the files' own naming.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

WIDTH, DEPTH, HEADS = 64, 2, 2


@dataclass
class Reference:
    """A saved checkpoint and the reference network's outputs for it.

    Attributes:
        path: what a user passes to the suite (a file or a HuggingFace directory).
        build: ``build_vit`` keywords of the matching encoder (family, declarations, shape).
        tokens: images -> the reference's final tokens in our order (cls, registers, patches),
            or None where the reference exposes only ``pre_norm_tokens``/``pooled``.
        pre_norm_tokens: images -> the last block's tokens before the final norm, if exposed.
        pooled: images -> (ours' final tokens -> a comparable pooled output, the reference's).
        size: the native input size; ``other_size``: another size the reference resamples to
            by its family's rule (None: not compared, see the test's note).
        atol: the tolerance (exact where the ops are the same).
    """

    path: Path
    build: dict[str, Any]
    tokens: Callable[[torch.Tensor], torch.Tensor] | None
    size: int
    other_size: int | None = None
    pre_norm_tokens: Callable[[torch.Tensor], torch.Tensor] | None = None
    pooled: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None
    atol: float = 1e-5
    notes: list[str] = field(default_factory=list)


def randomize(model: torch.nn.Module, seed: int = 0, std: float = 0.05) -> torch.nn.Module:
    """Every parameter drawn from N(0, std^2), norms included (a tiny model's init is too tame)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * std)
    return model.eval()


def tiny_shape(patch: int, size: int) -> dict[str, Any]:
    """``build_vit`` shape keywords of the tiny references (on the ``vit_base_patch16`` name)."""
    return {"embed_dim": WIDTH, "depth": DEPTH, "num_heads": HEADS, "patch_size": patch, "img_size": size}


# ---------------------------------------------------------------- transformers

def hf_config_kwargs(patch: int, size: int, **extra: Any) -> dict[str, Any]:
    return {"hidden_size": WIDTH, "num_hidden_layers": DEPTH, "num_attention_heads": HEADS,
            "intermediate_size": 4 * WIDTH, "patch_size": patch, "image_size": size, **extra}


def save_hf(model: torch.nn.Module, root: Path, layout: str) -> Path:
    """``dir``: save_pretrained (on-disk names); ``memory``: torch.save(state_dict()) (transformers 5.x
    in-memory names) with the config.json beside it."""
    if layout == "dir":
        model.save_pretrained(root)
        return root
    root.mkdir(parents=True, exist_ok=True)
    model.config.to_json_file(root / "config.json")
    torch.save(model.state_dict(), root / "weights.pth")
    return root / "weights.pth"


def hf_tokens(model: torch.nn.Module, **kwargs: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    def run(images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(pixel_values=images, interpolate_pos_encoding=True, **kwargs).last_hidden_state
    return run


def official_dinov2_state(hf_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A transformers Dinov2 state dict (on-disk names) in the official hub naming (dinov2 vision_transformer.py)."""
    out: dict[str, torch.Tensor] = {}
    names = {"embeddings.cls_token": "cls_token", "embeddings.mask_token": "mask_token",
             "embeddings.position_embeddings": "pos_embed", "embeddings.register_tokens": "register_tokens",
             "embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
             "embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
             "layernorm.weight": "norm.weight", "layernorm.bias": "norm.bias"}
    blocks = sorted({int(k.split(".")[2]) for k in hf_state if k.startswith("encoder.layer.")})
    for key, new in names.items():
        if key in hf_state:
            out[new] = hf_state[key]
    inner = {"norm1": "norm1", "norm2": "norm2", "attention.output.dense": "attn.proj", "mlp.fc1": "mlp.fc1",
             "mlp.fc2": "mlp.fc2", "mlp.weights_in": "mlp.w12", "mlp.weights_out": "mlp.w3"}
    for i in blocks:
        prefix = f"encoder.layer.{i}."
        for kind in ("weight", "bias"):
            out[f"blocks.{i}.attn.qkv.{kind}"] = torch.cat(
                [hf_state[f"{prefix}attention.attention.{p}.{kind}"] for p in ("query", "key", "value")])
            for old, new in inner.items():
                if f"{prefix}{old}.{kind}" in hf_state:
                    out[f"blocks.{i}.{new}.{kind}"] = hf_state[f"{prefix}{old}.{kind}"]
        out[f"blocks.{i}.ls1.gamma"] = hf_state[f"{prefix}layer_scale1.lambda1"]
        out[f"blocks.{i}.ls2.gamma"] = hf_state[f"{prefix}layer_scale2.lambda1"]
    return out


def disk_state(model: torch.nn.Module, root: Path) -> dict[str, torch.Tensor]:
    """The on-disk (save_pretrained) state dict of a transformers model."""
    from safetensors.torch import load_file

    model.save_pretrained(root)
    return load_file(str(root / "model.safetensors"))


# ---------------------------------------------------------------- open_clip

def open_clip_tiny(root: Path, quick_gelu: bool) -> torch.nn.Module:
    """open_clip's ``create_model`` on a registered tiny config (the ViT-B-16[-quickgelu] recipe at width 64)."""
    import open_clip

    name = "mt-tiny-16" + ("-quickgelu" if quick_gelu else "")
    config = {"embed_dim": 32, "quick_gelu": quick_gelu,
              "vision_cfg": {"image_size": 64, "layers": DEPTH, "width": WIDTH, "patch_size": 16, "head_width": 32},
              "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 32, "heads": 2, "layers": 1}}
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{name}.json").write_text(json.dumps(config))
    open_clip.add_model_config(root / f"{name}.json")
    return randomize(open_clip.create_model(name, pretrained=None))
