"""A matrix backbone's checkpoint: its architecture and family (read from the file, checked against the
declarations) and generated checkpoints (in the family's layout)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

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
    if not path.exists():
        raise SpecError(spec.path, key, f"'auto' needs the checkpoint {path}, which does not exist; "
                        f"set arch to one of {', '.join(ARCHS)}")
    try:
        converted = open_checkpoint(str(path), backbone.format)
    except CheckpointError as error:
        raise SpecError(spec.path, key, f"cannot read the checkpoint: {error}") from error
    arch = detect_arch(converted.state_dict)
    file_family(spec, backbone, path, converted)  # read anyway: refuse an undeclared family or activation now
    if arch is None:
        raise SpecError(spec.path, key, f"cannot detect the architecture of {path}; "
                        f"set arch to one of {', '.join(ARCHS)}")
    return arch


def file_family(spec: MatrixSpec, backbone: Backbone, path: Path, converted: Any = None) -> str:
    """What the checkpoint file of ``backbone`` is (format, family), checked against what it declares.

    Returns a line for ``doctor``. A family the file names that the backbone does not declare (or
    contradicts), and an option the file cannot tell (CLIP's activation) left undeclared, raise.
    ``converted``: the file already opened (``open_checkpoint``), else it is read here.

    Raises:
        SpecError: naming the backbone's key to set and its allowed values.
    """
    from mae_transfer.checkpoints import CheckpointError
    from mae_transfer.checkpoints.families.agreement import families_agree
    from mae_transfer.checkpoints.load import open_checkpoint
    from mae_transfer.models.options import ACTIVATIONS

    key = f"backbones[{[b.name for b in spec.backbones].index(backbone.name)}]"
    try:
        converted = open_checkpoint(str(path), backbone.format) if converted is None else converted
    except CheckpointError as error:
        raise SpecError(spec.path, f"{key}.checkpoint", f"cannot read the checkpoint: {error}") from error
    named, declared = converted.family, backbone.family
    what = f"{path} is a {named or 'plain ViT'} checkpoint (format {converted.format})"
    if named is not None and not families_agree(named, declared or "mae"):
        told = f"family {declared!r} is declared" if declared else "no family is declared (MAE's encoder is built)"
        raise SpecError(spec.path, f"{key}.family", f"{what} but {told}; set family: {named}")
    for option, hint in converted.must_declare.items():
        if option == "family" and declared is None:
            raise SpecError(spec.path, f"{key}.family", f"{what}; declare it: {hint}")
        if option in ("activation", "norm_eps") and getattr(backbone, option) is None:
            allowed = ", ".join(ACTIVATIONS) if option == "activation" else "a positive number"
            raise SpecError(spec.path, f"{key}.{option}", f"{what}, whose weights do not tell the {option}: "
                            f"declare it ({hint}); allowed values: {allowed}")
    declarations = ", ".join(f"{k} {v}" for k, v in backbone.declarations.items()) or "nothing declared"
    return f"{what}; {declarations}"


def write_generated_checkpoint(arch: str, out: Path, seed: int = 0, depth: int | None = None,
                               family: str | None = None, activation: str | None = None,
                               norm_eps: float | None = None, fmt: str | None = None) -> Path:
    """Write a random checkpoint of ``build_vit(arch, family=..., depth=...)`` in ``fmt`` (None or
    ``auto``: the family's own layout, ``{'model': state_dict}`` for MAE; a HuggingFace layout is
    a directory), with ``depth`` blocks when given.

    Deterministic for a given seed and package versions; written atomically (a directory is
    written beside ``out`` and renamed into place). A file already generated from the same
    arguments is kept.
    """
    import torch

    from mae_transfer.checkpoints.families.native import write_checkpoint
    from mae_transfer.checkpoints.layouts import DIRECTORY_FORMATS, written_format
    from mae_transfer.models import build_vit

    layout = written_format(family, fmt)
    declared = {"family": family, "activation": activation, "norm_eps": norm_eps}
    recipe = {"arch": arch, "seed": seed, "depth": depth}
    if layout != "mae" or any(v is not None for v in declared.values()):  # MAE's record as it always was
        recipe.update({**declared, "format": layout})
    record = out.with_name(out.name + ".json")  # what the file was generated from
    try:
        reusable = out.exists() and json.loads(record.read_text()) == recipe
    except (OSError, ValueError):
        reusable = False
    if reusable:
        return out
    if out.exists():
        logger.info("regenerating %s: it was not generated from %s", out, recipe)
    torch.manual_seed(seed)
    model = build_vit(arch, **{k: v for k, v in declared.items() if v is not None}, **({"depth": depth} if depth else {}))
    if layout in DIRECTORY_FORMATS:
        staging = out.with_name(f".{out.name}.writing")
        shutil.rmtree(staging, ignore_errors=True)
        write_checkpoint(model, family or "mae", layout, staging)
        if out.is_dir():
            shutil.rmtree(out)
        elif out.exists():
            out.unlink()
        staging.rename(out)
    else:
        if out.is_dir():
            shutil.rmtree(out)
        with atomic_path(out) as tmp:
            write_checkpoint(model, family or "mae", layout, tmp)
    atomic_write_text(record, json.dumps(recipe) + "\n")
    logger.info("wrote a generated %s checkpoint (%s, format %s) to %s", arch, family or "mae", layout, out)
    return out


def write_backbone_checkpoint(backbone: Backbone, out: Path, depth: int | None = None) -> Path:
    """A generated checkpoint for ``backbone``: its arch, declarations and format (the format only when
    it can be written for its family; else the family's own), with ``depth`` blocks (default: the backbone's)."""
    from mae_transfer.checkpoints.layouts import WRITTEN_FORMATS

    family = backbone.family or "mae"
    fmt = backbone.format if backbone.format in WRITTEN_FORMATS[family] else None
    return write_generated_checkpoint(backbone.arch, out, depth=depth if depth is not None else backbone.depth,
                                      family=backbone.family, activation=backbone.activation,
                                      norm_eps=backbone.norm_eps, fmt=fmt)
