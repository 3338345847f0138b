"""Write an encoder's weights in a family's own file layout (tiny checkpoints for smoke runs and tests).

The inverse of the readers for the raw layouts users download: the official DINOv2 hub file
(``register_tokens``, ``mask_token``), I-JEPA's ``{'encoder': {'module.' + k}}`` and open_clip's
``visual.*`` state dict; other families are written as timm state dicts. Reading a written file
back gives the same tensors (tests/families).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

import torch

NATIVE_LAYOUTS = {"dinov2": "dinov2", "dinov2_reg": "dinov2", "ijepa": "ijepa", "clip": "openai_clip"}


def native_state(family: str, state: Mapping[str, torch.Tensor]) -> dict:
    """``state`` (the suite's timm naming) as the object a user's file of ``family`` holds."""
    layout = NATIVE_LAYOUTS.get(family, "timm")
    state = {k: v.detach().clone() for k, v in state.items()}
    if layout == "dinov2":
        if "reg_token" in state:
            state["register_tokens"] = state.pop("reg_token")
        state["mask_token"] = torch.zeros(1, state["cls_token"].shape[-1])
        return state
    if layout == "ijepa":
        encoder = {"module." + k: v for k, v in state.items()}
        return {"encoder": encoder, "target_encoder": {k: v.clone() for k, v in encoder.items()}, "epoch": 0}
    if layout == "openai_clip":
        return {"visual." + _clip_name(k): (_clip_value(k, v)) for k, v in state.items()}
    return state


def _clip_name(key: str) -> str:
    swaps = (("patch_embed.proj.", "conv1."), ("norm_pre.", "ln_pre."), ("norm.", "ln_post."), ("cls_token", "class_embedding"),
             ("pos_embed", "positional_embedding"))
    for old, new in swaps:
        if key.startswith(old):
            return new + key[len(old):]
    match = re.match(r"^blocks\.(\d+)\.(.+)$", key)
    if match is None:
        return key
    inner = (("norm1.", "ln_1."), ("norm2.", "ln_2."), ("attn.qkv.weight", "attn.in_proj_weight"),
             ("attn.qkv.bias", "attn.in_proj_bias"), ("attn.proj.", "attn.out_proj."), ("mlp.fc1.", "mlp.c_fc."),
             ("mlp.fc2.", "mlp.c_proj."), ("ls1.gamma", "ls_1.gamma"), ("ls2.gamma", "ls_2.gamma"))
    rest = match.group(2)
    for old, new in inner:
        if rest.startswith(old):
            return f"transformer.resblocks.{match.group(1)}.{new}{rest[len(old):]}"
    return key


def _clip_value(key: str, value: torch.Tensor) -> torch.Tensor:
    if key == "cls_token":
        return value.reshape(-1)
    if key == "pos_embed":
        return value[0]
    return value


def write_native(family: str, state: Mapping[str, torch.Tensor], path: str | Path) -> Path:
    """Write ``state`` to ``path`` in ``family``'s own layout (torch.save); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(native_state(family, state), path)
    return path
