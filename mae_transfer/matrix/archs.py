"""Backbone checkpoints for the matrix: architecture auto-detection and generated checkpoints."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from mae_transfer.matrix.spec import Backbone, MatrixSpec, SpecError

logger = logging.getLogger(__name__)

_BLOCK = re.compile(r"(?:^|\.)(?:blocks|layers)\.(\d+)\.")


def _state_dict(path: Path) -> dict:
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    payload = torch.load(str(path), map_location="cpu", weights_only=True)
    for key in ("model", "state_dict", "module"):
        if isinstance(payload, dict) and isinstance(payload.get(key), dict):
            payload = payload[key]
    return payload


def detect_arch(spec: MatrixSpec, backbone: Backbone) -> str:
    """The named architecture of a checkpoint, from its patch embedding and block count.

    Raises:
        SpecError: when the file is missing or matches no known architecture.
    """
    from mae_transfer.models import ARCHS

    key = f"backbones[{[b.name for b in spec.backbones].index(backbone.name)}].arch"
    path = spec.resolve(backbone.checkpoint)
    if not path.is_file():
        raise SpecError(spec.path, key, f"'auto' needs the checkpoint {path}, which does not exist; "
                        f"set arch to one of {', '.join(ARCHS)}")
    state = _state_dict(path)
    patch = next((v for k, v in state.items() if "patch_embed" in k and k.endswith("weight") and v.ndim == 4), None)
    depth = 1 + max((int(m.group(1)) for k in state if (m := _BLOCK.search(k))), default=-1)
    if patch is not None:
        for name, arch in ARCHS.items():
            if (arch.embed_dim, arch.patch_size, arch.depth) == (patch.shape[0], patch.shape[-1], depth):
                return name
    found = "no patch embedding" if patch is None else f"dim {patch.shape[0]}, patch {patch.shape[-1]}, depth {depth}"
    raise SpecError(spec.path, key, f"cannot detect the architecture of {path} ({found}); "
                    f"set arch to one of {', '.join(ARCHS)}")


def write_generated_checkpoint(arch: str, out: Path, seed: int = 0) -> Path:
    """Write a random MAE-format checkpoint (``{'model': state_dict}``) of ``build_vit(arch)``.

    Deterministic for a given seed and package versions; written atomically.
    """
    import torch

    from mae_transfer.models import build_vit

    if out.is_file():
        return out
    torch.manual_seed(seed)
    model = build_vit(arch)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    torch.save({"model": model.state_dict()}, tmp)
    os.replace(tmp, out)
    logger.info("wrote generated %s checkpoint %s", arch, out)
    return out
