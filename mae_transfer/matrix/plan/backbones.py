"""A matrix backbone's checkpoint: its architecture (read from the file) and generated checkpoints."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from mae_transfer.matrix.spec.matrix_spec import Backbone, MatrixSpec, SpecError
from mae_transfer.records import atomic_path, atomic_write_text

logger = logging.getLogger(__name__)


def backbone_arch(spec: MatrixSpec, backbone: Backbone) -> str:
    """The arch name of a backbone declared ``arch: auto``, read (safely) from its checkpoint file.

    Raises:
        SpecError: when the file is missing, unreadable or matches no known architecture.
    """
    from mae_transfer.checkpoints import CheckpointError
    from mae_transfer.checkpoints.arch import detect_arch
    from mae_transfer.checkpoints.load import open_checkpoint
    from mae_transfer.models.archs import ARCHS

    key = f"backbones[{[b.name for b in spec.backbones].index(backbone.name)}].arch"
    path = spec.resolve(backbone.checkpoint)
    if not path.is_file():
        raise SpecError(spec.path, key, f"'auto' needs the checkpoint {path}, which does not exist; "
                        f"set arch to one of {', '.join(ARCHS)}")
    try:
        arch = detect_arch(open_checkpoint(str(path), backbone.format).state_dict)
    except CheckpointError as error:
        raise SpecError(spec.path, key, f"cannot read the checkpoint: {error}") from error
    if arch is None:
        raise SpecError(spec.path, key, f"cannot detect the architecture of {path}; "
                        f"set arch to one of {', '.join(ARCHS)}")
    return arch


def write_generated_checkpoint(arch: str, out: Path, seed: int = 0, depth: int | None = None) -> Path:
    """Write a random MAE-format checkpoint (``{'model': state_dict}``) of ``build_vit(arch)``,
    with ``depth`` blocks when given.

    Deterministic for a given seed and package versions; written atomically.
    """
    import torch

    from mae_transfer.models import build_vit

    recipe = {"arch": arch, "seed": seed, "depth": depth}
    record = out.with_name(out.name + ".json")  # what the file was generated from
    try:
        reusable = out.is_file() and json.loads(record.read_text()) == recipe
    except (OSError, ValueError):
        reusable = False
    if reusable:
        return out
    if out.is_file():
        logger.info("regenerating %s: it was not generated from %s", out, recipe)
    torch.manual_seed(seed)
    model = build_vit(arch, **({"depth": depth} if depth else {}))
    with atomic_path(out) as tmp:
        torch.save({"model": model.state_dict()}, tmp)
    atomic_write_text(record, json.dumps(recipe) + "\n")
    logger.info("wrote generated %s checkpoint %s", arch, out)
    return out
