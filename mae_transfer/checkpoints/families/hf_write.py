"""Write an encoder as a HuggingFace model directory (``config.json`` + ``model.safetensors``).

The inverse of :mod:`.hf_dinov2` and :mod:`.hf_clip` for the on-disk layout ``save_pretrained``
writes in transformers 5.x: ``Dinov2Model`` / ``Dinov2WithRegistersModel`` (``hf_dinov2``),
``CLIPVisionModel`` and ``SiglipVisionModel`` (``hf_clip``, by the encoder's family). The config
holds what the weights cannot tell (``layer_norm_eps``, ``hidden_act``), so transformers and the
suite's readers build the same network from it (tests/families/test_written_layouts.py loads the
directories with transformers). Used for generated checkpoints of smoke runs and rehearsals.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

HF_ACT = {"gelu": "gelu", "quick_gelu": "quick_gelu", "gelu_tanh": "gelu_pytorch_tanh"}


class _Writer:
    """Collects the directory's tensors from the encoder's state, refusing any tensor left unwritten."""

    def __init__(self, model: nn.Module) -> None:
        self.state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()
                      if not k.endswith("relative_position_index")}
        self.out: dict[str, torch.Tensor] = {}

    def take(self, key: str) -> torch.Tensor:
        return self.state.pop(key)

    def put(self, name: str, value: torch.Tensor) -> None:
        self.out[name] = value.contiguous()

    def qkv(self, block: int, names: tuple[str, str, str], suffix: str = "") -> None:
        for kind in ("weight", "bias"):
            for name, part in zip(names, self.take(f"blocks.{block}.attn.qkv.{kind}").chunk(3)):
                self.put(f"{name}{suffix}.{kind}", part)

    def finish(self, fmt: str) -> dict[str, torch.Tensor]:
        if self.state:
            raise ValueError(f"{fmt}: the encoder's {sorted(self.state)[:5]} have no place in this layout")
        return self.out


def _common_config(model: nn.Module, mlp_hidden: int) -> dict[str, Any]:
    options = model.options
    if options.activation not in HF_ACT:
        raise ValueError(f"the activation {options.activation!r} has no transformers name")
    return {"hidden_size": model.embed_dim, "num_hidden_layers": len(model.blocks),
            "num_attention_heads": model.blocks[0].attn.num_heads, "intermediate_size": mlp_hidden,
            "patch_size": model.patch_size, "image_size": model.grid_size[0] * model.patch_size,
            "layer_norm_eps": options.norm_eps, "hidden_act": HF_ACT[options.activation], "num_channels": 3}


def dinov2_directory(model: nn.Module) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(config, tensors) of a ``Dinov2Model`` / ``Dinov2WithRegistersModel`` directory."""
    w = _Writer(model)
    registers = model.options.register_tokens
    w.put("embeddings.cls_token", w.take("cls_token"))
    w.put("embeddings.mask_token", torch.zeros(1, model.embed_dim))
    if registers:
        w.put("embeddings.register_tokens", w.take("reg_token"))
    w.put("embeddings.position_embeddings", w.take("pos_embed"))
    for kind in ("weight", "bias"):
        w.put(f"embeddings.patch_embeddings.projection.{kind}", w.take(f"patch_embed.proj.{kind}"))
        w.put(f"layernorm.{kind}", w.take(f"norm.{kind}"))
    for i in range(len(model.blocks)):
        prefix = f"encoder.layer.{i}."
        w.qkv(i, tuple(f"{prefix}attention.attention.{p}" for p in ("query", "key", "value")))
        for old, new in (("norm1", "norm1"), ("norm2", "norm2"), ("attn.proj", "attention.output.dense"),
                         ("mlp.fc1", "mlp.fc1"), ("mlp.fc2", "mlp.fc2")):
            for kind in ("weight", "bias"):
                w.put(f"{prefix}{new}.{kind}", w.take(f"blocks.{i}.{old}.{kind}"))
        w.put(f"{prefix}layer_scale1.lambda1", w.take(f"blocks.{i}.ls1.gamma"))
        w.put(f"{prefix}layer_scale2.lambda1", w.take(f"blocks.{i}.ls2.gamma"))
    hidden = model.blocks[0].mlp.fc1.out_features
    config = _common_config(model, hidden)
    config.pop("intermediate_size")  # Dinov2Config sizes its MLP by mlp_ratio
    config.update({"model_type": "dinov2_with_registers" if registers else "dinov2",
                   "architectures": ["Dinov2WithRegistersModel" if registers else "Dinov2Model"],
                   "mlp_ratio": hidden // model.embed_dim, "qkv_bias": True, "layerscale_value": 1.0,
                   "use_swiglu_ffn": False, **({"num_register_tokens": registers} if registers else {})})
    return config, w.finish("hf_dinov2")


def clip_directory(model: nn.Module, family: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(config, tensors) of a ``CLIPVisionModel`` (family clip) or ``SiglipVisionModel`` (siglip) directory."""
    w = _Writer(model)
    if family == "clip":
        w.put("embeddings.class_embedding", w.take("cls_token").reshape(-1))
        for kind in ("weight", "bias"):
            w.put(f"pre_layrnorm.{kind}", w.take(f"norm_pre.{kind}"))
    w.put("embeddings.position_embedding.weight", w.take("pos_embed")[0])
    for kind in ("weight", "bias"):
        if f"patch_embed.proj.{kind}" in w.state:
            w.put(f"embeddings.patch_embedding.{kind}", w.take(f"patch_embed.proj.{kind}"))
        w.put(f"post_layernorm.{kind}", w.take(f"norm.{kind}"))
    for i in range(len(model.blocks)):
        prefix = f"encoder.layers.{i}."
        w.qkv(i, tuple(f"{prefix}self_attn.{p}_proj" for p in "qkv"))
        for old, new in (("norm1", "layer_norm1"), ("norm2", "layer_norm2"), ("attn.proj", "self_attn.out_proj"),
                         ("mlp.fc1", "mlp.fc1"), ("mlp.fc2", "mlp.fc2")):
            for kind in ("weight", "bias"):
                w.put(f"{prefix}{new}.{kind}", w.take(f"blocks.{i}.{old}.{kind}"))
    config = _common_config(model, model.blocks[0].mlp.fc1.out_features)
    if family == "clip":
        config.update({"model_type": "clip_vision_model", "architectures": ["CLIPVisionModel"]})
    else:  # the attention-pooling head is not part of the suite's encoder: none is written
        config.update({"model_type": "siglip_vision_model", "architectures": ["SiglipVisionModel"],
                       "vision_use_head": False})
    return config, w.finish("hf_clip")


def write_hf_directory(model: nn.Module, family: str, fmt: str, folder: str | Path) -> Path:
    """Write ``model`` (a full ``MAEViT`` of ``family``) as a HuggingFace directory of ``fmt``.

    Raises:
        ValueError: a family/format pair without a writer, or an encoder with parts the layout lacks.
    """
    from safetensors.torch import save_file

    if fmt == "hf_dinov2" and family in ("dinov2", "dinov2_reg"):
        config, tensors = dinov2_directory(model)
    elif fmt == "hf_clip" and family in ("clip", "siglip"):
        config, tensors = clip_directory(model, family)
    else:
        raise ValueError(f"no HuggingFace writer for family {family!r} in format {fmt!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder
