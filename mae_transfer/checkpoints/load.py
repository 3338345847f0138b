"""`load_pretrained`: validated, all-or-nothing loading of a pretrained ViT checkpoint.

After conversion to canonical names every model key must come from the checkpoint, except an
explicit allow-list of keys that pretrained checkpoints legitimately lack (relative position
tables, layer scale, task heads), which keep their init and are reported. Every checkpoint key
that is not loaded is reported with its reason; a key with no known reason is an error. Shapes
are checked first and position tensors resized; the model is written only when the whole load
validates, so a failed load leaves the model untouched.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from mae_transfer.checkpoints.arch import ArchShape, arch_name, arch_shape
from mae_transfer.checkpoints.convert import ConvertedCheckpoint, convert_checkpoint
from mae_transfer.checkpoints.errors import CheckpointError
from mae_transfer.checkpoints.formats import detect_format, require_format
from mae_transfer.checkpoints.reader import read_checkpoint
from mae_transfer.checkpoints.report import DroppedKey, LoadReport, MissingKey, ResizedKey
from mae_transfer.checkpoints.resize import (
    GridSize,
    fit_pos_embed,
    fit_rel_pos,
    fit_rel_pos_bias_table,
    rel_pos_table_grid,
)
from mae_transfer.checkpoints.families.agreement import check_options, declared_options, family_of_options
from mae_transfer.models.options import EncoderOptions
from mae_transfer.models.patch_kernel import resize_patch_kernel
from mae_transfer.models.pos_embed import square_grid

logger = logging.getLogger(__name__)

Source = str | os.PathLike | Mapping[str, Any]

# Model keys a pretrained checkpoint may lack (fnmatch pattern, why the init is kept).
_NO_REL_POS = "no decomposed relative positions in the checkpoint; keeps its zero init"
ALLOWED_MISSING: tuple[tuple[str, str], ...] = (
    (
        "blocks.*.attn.relative_position_bias_table",
        "no relative position bias in the checkpoint; keeps its zero init",
    ),
    ("blocks.*.attn.rel_pos_h", _NO_REL_POS),
    ("blocks.*.attn.rel_pos_w", _NO_REL_POS),
    ("blocks.*.ls1.gamma", "no layer scale in the checkpoint; keeps its init"),
    ("blocks.*.ls2.gamma", "no layer scale in the checkpoint; keeps its init"),
    (
        "shared_rel_pos.*.relative_position_bias_table",
        "no shared relative position bias in the checkpoint; keeps its zero init",
    ),
    ("*relative_position_index", "derived index buffer, computed by the model"),
    ("head.*", "task head; keeps its init"),
    ("fc_norm.*", "task head norm; keeps its init"),
)
_TASK_HEAD = ("head.*", "fc_norm.*")


def open_checkpoint(source: Source, fmt: str | None = None) -> ConvertedCheckpoint:
    """Read (safely), detect and convert a checkpoint file, HuggingFace directory or in-memory dict.

    A family reader (:mod:`mae_transfer.checkpoints.families`) converts the layouts it
    recognises; the rest go through the generic timm/MAE/OpenMMLab detection. ``fmt`` (a
    `FORMATS` name) forces the format: a file of another format is refused.
    """
    from mae_transfer.checkpoints.families import CheckpointFile, read_family
    from mae_transfer.checkpoints.families.generic import describe_generic
    from mae_transfer.checkpoints.families.hf_config import hf_weights_and_config
    from mae_transfer.checkpoints.reader import RawCheckpoint, read_weight_files

    config = config_file = None
    if isinstance(source, Mapping):
        raw = source if isinstance(source, RawCheckpoint) else RawCheckpoint("<in-memory dict>", "dict", dict(source))
    else:
        path = Path(source)
        hf = hf_weights_and_config(path) if path.exists() else None
        if hf is not None:
            weights, config, config_path = hf
            raw = read_weight_files(weights, source=str(path))
            config_file = str(config_path)
        else:
            raw = read_checkpoint(path)
    file = CheckpointFile(raw.source, raw.container, raw.obj, config, config_file)
    converted = read_family(file)
    if converted is None and config is not None:
        raise CheckpointError(
            f"config.json model_type {config.get('model_type')!r} is not a ViT family the suite reads; supported: "
            "vit, deit, vit_mae, vit_msn, ijepa, dinov2, dinov2_with_registers, clip, clip_vision_model, siglip, "
            "siglip_vision_model, beit, data2vec-vision",
            file=config_file, key="model_type",
        )
    if converted is None:
        detected = detect_format(raw)
        converted = describe_generic(convert_checkpoint(detected), detected.metadata)
    return require_format(converted, fmt)


def load_pretrained(
    model: nn.Module,
    source: Source,
    *,
    ignore: Sequence[str] = (),
    allow_missing: Sequence[str] = (),
    fmt: str | None = None,
) -> LoadReport:
    """Load a pretrained checkpoint of any supported format into a ViT, or raise.

    Args:
        model: an `MAEViT` (or any module with timm ViT parameter names). Checkpoint keys of
            parts the model leaves out on purpose (its ``omitted_keys()``: the final norm and
            blocks after the last tap of a maps-only backbone, the cls token under window
            attention) are dropped and reported with the model's reason.
        source: a checkpoint path (``.pth``/``.safetensors``/...) or an in-memory checkpoint.
        ignore: fnmatch patterns of checkpoint keys (canonical or stored names) to drop on
            purpose; they are reported as dropped by the caller.
        allow_missing: fnmatch patterns of further model keys allowed to keep their init.
        fmt: force this format (a `FORMATS` name; None or ``auto``: detected): a checkpoint
            of another format raises.

    Returns:
        The `LoadReport` (format, matched, missing, unexpected, resized).

    Raises:
        CheckpointError: unreadable or unrecognised file, not the forced format, empty state dict, wrong architecture,
            a shape that cannot be resized, an unknown checkpoint key, or required model keys
            missing. The model is not modified in that case.
    """
    converted = open_checkpoint(source, fmt)
    omitted = getattr(model, "omitted_keys", None)
    state, report = plan_load(
        model.state_dict(),
        converted,
        grid_size=_model_grid(model),
        ignore=ignore,
        allow_missing=allow_missing,
        omitted=omitted() if callable(omitted) else (),
        options=getattr(model, "options", None),
    )
    refuse_non_finite(converted)
    with torch.no_grad():
        result = model.load_state_dict(state, strict=False)
    expected_missing = {m.key for m in report.missing} - set(state)
    if set(result.missing_keys) != expected_missing or result.unexpected_keys:
        raise CheckpointError(
            f"internal check failed: torch reported missing {sorted(result.missing_keys)[:5]} "
            f"and unexpected {sorted(result.unexpected_keys)[:5]}",
            file=converted.source,
        )
    logger.info(
        "loaded %s (%s, %s): %d matched, %d kept init, %d dropped, %d resized",
        report.source, report.format, report.arch or "unknown arch", len(report.matched),
        len(report.missing), len(report.unexpected), len(report.resized),
    )
    return report


def non_finite_tensors(state_dict: Mapping[str, torch.Tensor]) -> list[tuple[str, int, int]]:
    """(key, NaN count, inf count) of every floating-point tensor holding a non-finite value."""
    found = []
    for key, tensor in state_dict.items():
        if not (tensor.is_floating_point() or tensor.is_complex()) or bool(torch.isfinite(tensor).all()):
            continue
        nan = int(torch.isnan(tensor).sum())
        found.append((key, nan, int(tensor.numel() - torch.isfinite(tensor).sum()) - nan))
    return found


def refuse_non_finite(converted: ConvertedCheckpoint) -> None:
    """Raise `CheckpointError` naming the keys if any weight to load is NaN or infinite.

    A single NaN weight makes every loss NaN from the first step; the run would otherwise
    finish at chance accuracy and look like a result.
    """
    bad = non_finite_tensors(converted.state_dict)
    if not bad:
        return
    shown = ", ".join(
        f"'{converted.origin.get(key, key)}' ({nan} NaN, {inf} inf)" for key, nan, inf in bad[:5]
    )
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    raise CheckpointError(
        f"non-finite weights: {len(bad)} tensor(s) hold NaN or inf values: {shown}{more}; "
        "refusing to load (the model is untouched)",
        file=converted.source,
        key=converted.origin.get(bad[0][0], bad[0][0]),
    )


def plan_load(
    model_state: Mapping[str, torch.Tensor],
    converted: ConvertedCheckpoint,
    *,
    grid_size: GridSize | None = None,
    ignore: Sequence[str] = (),
    allow_missing: Sequence[str] = (),
    omitted: Sequence[tuple[str, str]] = (),
    options: EncoderOptions | None = None,
) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """Validate a converted checkpoint against a model's state (shapes only) without writing.

    ``options`` (the model's :class:`EncoderOptions`) must agree with every option the file
    tells (class token, registers, pre-norm, patch bias, MLP kind; eps and activation from a
    ``config.json``); the options the file cannot tell are taken from the model and reported as
    declared. Position tables are resized by the model's family rule.

    Works with meta-device model states. ``omitted`` holds (fnmatch pattern, reason) pairs of
    canonical checkpoint keys the model does not own on purpose (``MAEViT.omitted_keys()``);
    they are dropped with that reason before anything else is checked. Returns the tensors to
    load and the report.

    Raises:
        CheckpointError: as `load_pretrained`.
    """
    file = converted.source
    check_options(converted, options)
    checkpoint = converted.state_dict
    omitted_reasons: list[DroppedKey] = []
    if omitted:
        kept = {}
        for key, tensor in checkpoint.items():
            reason = next((why for pattern, why in omitted if fnmatch.fnmatchcase(key, pattern)), None)
            if reason is None or key in model_state:
                kept[key] = tensor
            else:
                omitted_reasons.append(DroppedKey(converted.origin.get(key, key), reason))
        checkpoint = kept
    if not checkpoint:
        raise CheckpointError(
            "no encoder weights left after conversion (everything was dropped: "
            f"{[d.key for d in converted.dropped[:5]]})",
            file=file,
        )
    ckpt_shape, model_shape = arch_shape(checkpoint), arch_shape(model_state)
    report = LoadReport(
        source=file,
        format=converted.format,
        arch=arch_name(ckpt_shape),
        model_arch=arch_name(model_shape),
        unexpected=list(converted.dropped) + omitted_reasons,
        notes=list(converted.notes),
        family=converted.family,
        declared=declared_options(converted, options),
        model_family=family_of_options(options),
    )
    _check_architecture(checkpoint, model_state, ckpt_shape, model_shape, file)
    state: dict[str, torch.Tensor] = {}
    for key, tensor in checkpoint.items():
        stored = converted.origin.get(key, key)
        if _matches(key, ignore) or _matches(stored, ignore):
            report.unexpected.append(DroppedKey(stored, "ignored by the caller"))
        elif key in model_state:
            value = _fit(key, tensor, model_state[key], grid_size, report, stored, file, options)
            if value is None:
                continue
            state[key] = value
            report.matched.append(key)
            if value.dtype != model_state[key].dtype:
                report.notes.append(f"{key}: cast {value.dtype} -> {model_state[key].dtype}")
        else:
            report.unexpected.append(DroppedKey(stored, _unused_reason(key, tensor, stored, file)))
    if converted.zero_pos_embed and "pos_embed" in model_state and "pos_embed" not in state:
        state["pos_embed"] = torch.zeros_like(model_state["pos_embed"], device="cpu")
        report.missing.append(
            MissingKey("pos_embed", "BEiT-style checkpoint has no absolute position embedding: set to 0")
        )
    _check_missing(model_state, checkpoint, state, allow_missing, report, file)
    return state, report


def _check_architecture(
    checkpoint: Mapping[str, torch.Tensor],
    model_state: Mapping[str, torch.Tensor],
    ckpt_shape: ArchShape | None,
    model_shape: ArchShape | None,
    file: str,
) -> None:
    if ckpt_shape is None or model_shape is None:
        return
    # Patch size alone may differ: the kernel is resized in `_fit` (ViT-H/14 -> /16, ViTDet).
    ckpt_dims = (ckpt_shape.embed_dim, ckpt_shape.depth)
    model_dims = (model_shape.embed_dim, model_shape.depth)
    if ckpt_dims == model_dims:
        return
    key = next(
        (k for k in model_state if k in checkpoint and model_state[k].shape != checkpoint[k].shape),
        None,
    )
    if key is None:
        extra = (k for k in checkpoint if k.startswith("blocks.") and k not in model_state)
        key = next(extra, None)
    raise CheckpointError(
        f"wrong architecture: the checkpoint is {ckpt_shape.describe()} but the model is "
        f"{model_shape.describe()}",
        file=file,
        key=key,
        expected=tuple(model_state[key].shape) if key in model_state else "no such key",
        found=tuple(checkpoint[key].shape) if key in checkpoint else "absent",
    )


def _fit(
    key: str,
    tensor: torch.Tensor,
    target: torch.Tensor,
    grid_size: GridSize | None,
    report: LoadReport,
    stored: str,
    file: str,
    options: EncoderOptions | None = None,
) -> torch.Tensor | None:
    """The checkpoint tensor in the model's shape (resized if allowed), or None if dropped."""
    want, have = tuple(target.shape), tuple(tensor.shape)
    if want == have:
        return tensor
    resized = None
    try:
        if key == "pos_embed" and tensor.dim() == 3 and len(want) == 3 and want[2] == have[2]:
            cls_slot = options is None or options.class_token
            rule = options.pos_rule if options is not None else "bicubic"
            new_hw = _grid_for(want[1] - int(cls_slot), grid_size)
            if new_hw is not None:
                resized = fit_pos_embed(tensor, new_hw, rule=rule, cls_slot=cls_slot)
                method = f"{rule}" + (", cls slot kept" if cls_slot else "")
        elif key.endswith("attn.relative_position_bias_table") and want[1:] == have[1:]:
            new_hw = _table_grid(want[0], grid_size)
            if new_hw is not None:
                resized, method = fit_rel_pos_bias_table(tensor, new_hw), "bicubic on distances"
        elif fnmatch.fnmatchcase(key, "shared_rel_pos.*.relative_position_bias_table") and want[1:] == have[1:]:
            old_hw, new_hw = rel_pos_table_grid(have[0], cls_rows=0), rel_pos_table_grid(want[0], cls_rows=0)
            if old_hw is not None and new_hw is not None:
                resized = fit_rel_pos_bias_table(tensor, new_hw, old_hw, cls_rows=0)
                method = "bicubic on distances"
        elif key.endswith(("attn.rel_pos_h", "attn.rel_pos_w")) and want[1:] == have[1:]:
            resized, method = fit_rel_pos(tensor, want[0]), "linear"
        elif key == "patch_embed.proj.weight" and len(want) == 4 and want[:2] == have[:2]:
            resized, method = resize_patch_kernel(tensor, want[2:]), "bicubic patch kernel"
    except ValueError as error:
        raise CheckpointError(
            f"cannot resize: {error}", file=file, key=stored, expected=want, found=have
        ) from error
    if resized is not None and tuple(resized.shape) == want:
        report.resized.append(ResizedKey(key, have, want, method))
        return resized
    if any(fnmatch.fnmatchcase(key, pattern) for pattern in _TASK_HEAD):
        report.unexpected.append(
            DroppedKey(stored, f"task head of shape {have}, the model's is {want}")
        )
        return None
    raise CheckpointError("shape mismatch", file=file, key=stored, expected=want, found=have)


def _unused_reason(key: str, tensor: torch.Tensor, stored: str, file: str) -> str:
    """Why a checkpoint key absent from the model may be dropped; raise if it may not."""
    if any(fnmatch.fnmatchcase(key, pattern) for pattern in _TASK_HEAD):
        return "task head; the model has none"
    if key == "cls_token":
        return "the model uses no cls token"
    is_table = key.endswith(("relative_position_bias_table", "rel_pos_h", "rel_pos_w"))
    is_gamma = key.endswith((".ls1.gamma", ".ls2.gamma"))
    if is_table or is_gamma:
        neutral = torch.zeros_like(tensor) if is_table else torch.ones_like(tensor)
        what = "relative position bias" if is_table else "layer scale"
        if torch.equal(tensor, neutral):
            value = "zero" if is_table else "one"
            return f"the model has no {what}; this one is all {value} (no effect)"
        if key.startswith("shared_rel_pos."):
            option = "window=dict(..., rel_pos='shared')"
        elif key.endswith("bias_table"):
            option = "rel_pos_bias=True"
        else:
            option = "window=dict(..., rel_pos='decomposed')" if is_table else "layer_scale_init"
        raise CheckpointError(
            f"the checkpoint has a trained {what} the model lacks; build the model with "
            f"{option} to load it, or pass ignore=['{key}'] to drop it knowingly",
            file=file,
            key=stored,
        )
    raise CheckpointError(
        f"checkpoint key '{stored}' (canonical '{key}', shape {tuple(tensor.shape)}) has no "
        "place in the model; pass ignore=[...] to drop it knowingly",
        file=file,
        key=stored,
    )


def _check_missing(
    model_state: Mapping[str, torch.Tensor],
    checkpoint: Mapping[str, torch.Tensor],
    state: Mapping[str, torch.Tensor],
    allow_missing: Sequence[str],
    report: LoadReport,
    file: str,
) -> None:
    allowed = list(ALLOWED_MISSING)
    allowed += [(pattern, "allowed by the caller; keeps its init") for pattern in allow_missing]
    if "fc_norm.weight" in checkpoint and "norm.weight" not in checkpoint:
        allowed.append(("norm.*", "checkpoint fine-tuned with global pooling has fc_norm, no norm"))
    required = []
    already = {m.key for m in report.missing}
    for key in model_state:
        if key in state or key in already:
            continue
        reason = next((why for pattern, why in allowed if _matches(key, [pattern])), None)
        if reason is None:
            required.append(key)
        else:
            report.missing.append(MissingKey(key, reason))
    if required or not report.matched:
        key = required[0] if required else None
        raise CheckpointError(
            f"too little of the model matches the checkpoint: {len(report.matched)} of "
            f"{len(model_state)} model keys loaded, {len(required)} required keys missing "
            f"(first: {required[:5]}); checkpoint format '{report.format}', arch "
            f"{report.arch or 'unknown'}",
            file=file,
            key=key,
            expected=tuple(model_state[key].shape) if key else None,
            found="absent" if key else None,
        )


def _grid_for(num_tokens: int, grid_size: GridSize | None) -> GridSize | None:
    if grid_size is not None and grid_size[0] * grid_size[1] == num_tokens:
        return tuple(grid_size)
    return square_grid(num_tokens)


def _table_grid(num_rows: int, grid_size: GridSize | None) -> GridSize | None:
    if grid_size is not None and (2 * grid_size[0] - 1) * (2 * grid_size[1] - 1) + 3 == num_rows:
        return tuple(grid_size)
    return rel_pos_table_grid(num_rows)


def _model_grid(model: nn.Module) -> GridSize | None:
    grid = getattr(model, "grid_size", None)
    if grid is None:
        grid = getattr(getattr(model, "patch_embed", None), "grid_size", None)
    if isinstance(grid, int):
        return (grid, grid)
    return tuple(grid) if grid is not None and len(grid) == 2 else None


def _matches(key: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns)
