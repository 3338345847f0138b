"""Checkpoint format detection: where the weights sit in the file and which naming they use.

Formats (REFERENCES.md, "Checkpoint formats to read"):

- ``mae``: official MAE encoder, ``{'model': sd}`` in timm naming; ``mae_full`` adds the
  decoder (``_full`` and visualize checkpoints); ``mae_finetuned`` has ``fc_norm`` and ``head``.
- ``supervised``: ``{'model': sd}`` with a classifier (DeiT, supervised ViT);
  ``deit_distilled`` also has ``dist_token`` and ``head_dist``.
- ``timm``: a bare timm state dict (``.pth``/``.bin`` or ``.safetensors``).
- ``beit``: BEiT naming (``attn.q_bias``/``v_bias``, ``gamma_1``/``gamma_2``, relative
  position tables, optionally one shared ``rel_pos_bias`` table).
- ``mocov3``: ``{'state_dict': ...}`` with the ``module.base_encoder.`` prefix.
- ``mmpretrain``: MMPretrain / MMSelfSup (``backbone.layers.{i}.ln1`` ... ``backbone.ln1``).
- ``mmseg``: MMSegmentation naming, from beit2mmseg or a trained segmentor.
- ``mm_task``: an OpenMMLab task model whose ``backbone.`` is timm-named (our own integrations).
- ``canonical``: written by ``mae-transfer convert``.

``FORMATS`` is the one list of format names: the loader reports one of them, and a matrix
backbone's ``format:`` (or a backbone's ``pretrained_format``) forces one, which the loader then
requires of the file (`require_format`). Importing this module does not import torch (the
matrix spec reads the names); detection imports it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from mae_transfer.checkpoints.errors import CheckpointError

if TYPE_CHECKING:
    from mae_transfer.checkpoints.reader import RawCheckpoint

FORMATS: dict[str, str] = {
    "canonical": "mae-transfer canonical checkpoint (timm naming)",
    "mae": "official MAE encoder",
    "mae_full": "official MAE with decoder (_full / visualize)",
    "mae_finetuned": "official MAE fine-tuned (fc_norm + head)",
    "supervised": "supervised ViT with a classification head (e.g. DeiT)",
    "deit_distilled": "DeiT with distillation token",
    "timm": "timm state dict",
    "beit": "BEiT",
    "mocov3": "MoCo v3",
    "mmpretrain": "MMPretrain / MMSelfSup",
    "mmseg": "MMSegmentation (beit2mmseg-converted or trained segmentor)",
    "mm_task": "OpenMMLab task model with a timm-named backbone",
    # the family readers (mae_transfer.checkpoints.families)
    "hf_vit": "HuggingFace ViT / DeiT / ViTMAE / ViT-MSN / I-JEPA directory",
    "hf_dinov2": "HuggingFace Dinov2 / Dinov2WithRegisters directory",
    "hf_clip": "HuggingFace CLIP / SigLIP vision directory",
    "hf_beit": "HuggingFace BEiT / data2vec-vision directory",
    "dinov2": "official DINOv2 hub weights (with or without registers)",
    "dino": "DINO v1 / iBOT training checkpoint (teacher backbone)",
    "ijepa": "official I-JEPA checkpoint ('encoder', 'module.' prefix)",
    "openai_clip": "OpenAI CLIP / open_clip state dict (visual.*)",
}
# Every detected format may be forced: forcing only requires what detection finds, so no name
# is unsafe to select. "auto" (the default) requires nothing.
AUTO_FORMAT = "auto"

# Top-level keys under which formats nest their weights, in the order they are tried.
STATE_DICT_KEYS = ("model", "state_dict", "module", "model_ema")
CANONICAL_META_KEY = "mae_transfer"

_TIMM_BLOCK = re.compile(r"^blocks\.\d+\.")
_MM_LAYER = re.compile(r"^layers\.\d+\.")
_BEIT_MARKERS = (".attn.q_bias", ".gamma_1", "rel_pos_bias.", "lm_head.")
_DECODER_MARKERS = ("decoder_", "mask_token")


@dataclass
class DetectedCheckpoint:
    """A checkpoint's weights located and its format named (keys still as in the file).

    Attributes:
        source: the path, or ``<in-memory dict>``.
        container: ``torch``, ``safetensors`` or ``dict``.
        format: one of `FORMATS`.
        location: where the weights were found, e.g. ``['model']`` (empty: top level).
        prefix: key prefix in front of the encoder's names (``backbone.``,
            ``module.base_encoder.``), or empty.
        state_dict: the tensors as stored (original keys).
        metadata: safetensors metadata or the canonical header, if any.
    """

    source: str
    container: str
    format: str
    location: str
    prefix: str
    state_dict: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)


def detect_format(checkpoint: RawCheckpoint | Mapping[str, Any]) -> DetectedCheckpoint:
    """Locate the weights in a checkpoint and name its format.

    Args:
        checkpoint: what `read_checkpoint` returned, or an in-memory checkpoint (a bare state
            dict or one nested under ``model``/``state_dict``/...).

    Raises:
        CheckpointError: empty, no tensors found, or no ViT keys in a known naming.
    """
    from mae_transfer.checkpoints.reader import RawCheckpoint

    if not isinstance(checkpoint, RawCheckpoint):
        if not isinstance(checkpoint, Mapping):
            raise CheckpointError(
                f"expected a checkpoint dict, found {type(checkpoint).__name__}",
                file="<in-memory dict>",
            )
        checkpoint = RawCheckpoint("<in-memory dict>", container="dict", obj=dict(checkpoint))
    source, obj = checkpoint.source, checkpoint.obj
    if not obj:
        raise CheckpointError("the checkpoint is an empty dict, expected weights", file=source)
    location, state_dict = _locate_state_dict(obj, source)
    metadata: dict[str, Any] = dict(checkpoint.metadata)
    header = obj.get(CANONICAL_META_KEY) if location == "['model']" else None
    if isinstance(header, Mapping):
        metadata.update(header)
    keys = list(state_dict)
    prefix = _encoder_prefix(keys)
    inner = [k[len(prefix):] for k in keys if k.startswith(prefix)]
    fmt = _name_format(inner, prefix, location, checkpoint, metadata, keys)
    if fmt is None:
        raise CheckpointError(
            f"unrecognised checkpoint layout: {len(keys)} entries under "
            f"{location or 'the top level'}, first keys {keys[:5]}; expected ViT keys such as "
            "'blocks.0.attn.qkv.weight' (MAE/timm/DeiT/BEiT/MoCo v3) or "
            "'backbone.layers.0.ffn.layers.0.0.weight' (OpenMMLab)",
            file=source,
        )
    return DetectedCheckpoint(
        source=source,
        container=checkpoint.container,
        format=fmt,
        location=location,
        prefix=prefix,
        state_dict=state_dict,
        metadata=metadata,
    )


def _locate_state_dict(obj: Mapping[str, Any], source: str) -> tuple[str, dict[str, Any]]:
    if _holds_tensors(obj):
        return "", dict(obj)
    for key in STATE_DICT_KEYS:
        value = obj.get(key)
        if isinstance(value, Mapping):
            if not value:
                raise CheckpointError(
                    f"the state dict under ['{key}'] is empty, expected weights", file=source
                )
            if _holds_tensors(value):
                return f"['{key}']", dict(value)
    shown = {k: type(v).__name__ for k, v in list(obj.items())[:8]}
    raise CheckpointError(
        "no state dict found: expected a dict of tensors at the top level or under one of "
        f"{list(STATE_DICT_KEYS)}, found top-level keys {shown}",
        file=source,
    )


def forced_format(fmt: str | None, key: str = "format") -> str | None:
    """The format ``fmt`` forces: None for None or ``auto``; ValueError (naming ``key``) for an
    unknown name."""
    if fmt in (None, AUTO_FORMAT):
        return None
    if fmt not in FORMATS:
        raise ValueError(f"{key}: unknown checkpoint format {fmt!r}; expected {AUTO_FORMAT!r} or one of "
                         f"{', '.join(FORMATS)}")
    return fmt


def require_format(detected: Any, fmt: str | None) -> Any:
    """``detected`` (a DetectedCheckpoint or ConvertedCheckpoint) when its format is ``fmt``
    (None or ``auto``: any), else CheckpointError.

    A forced format is a check of the file, not a reinterpretation: the error names the file,
    the forced format and the one found.
    """
    forced = forced_format(fmt)
    if forced is None or detected.format == forced:
        return detected
    raise CheckpointError(
        f"the checkpoint was forced to format {forced!r} ({FORMATS[forced]}) but is {detected.format!r} "
        f"({FORMATS[detected.format]}); set the format to {detected.format!r} or 'auto', or fix the path",
        file=detected.source, expected=forced, found=detected.format,
    )


def _holds_tensors(mapping: Mapping[str, Any]) -> bool:
    import torch

    values = list(mapping.values())
    tensors = sum(isinstance(v, torch.Tensor) for v in values)
    return tensors > 0 and tensors * 2 >= len(values)


def _encoder_prefix(keys: list[str]) -> str:
    for prefix in ("module.base_encoder.", "base_encoder.", "backbone.", "module."):
        inner = [k[len(prefix):] for k in keys if k.startswith(prefix)]
        if any(_TIMM_BLOCK.match(k) or _MM_LAYER.match(k) for k in inner):
            return prefix
    return ""


def _name_format(
    inner: list[str],
    prefix: str,
    location: str,
    checkpoint: RawCheckpoint,
    metadata: Mapping[str, Any],
    all_keys: list[str],
) -> str | None:
    if metadata.get("format") == "canonical" or metadata.get("mae_transfer_format") == "canonical":
        return "canonical"
    if prefix.endswith("base_encoder."):
        return "mocov3"
    if any(_MM_LAYER.match(k) for k in inner) or any(
        k.startswith("patch_embed.projection.") for k in inner
    ):
        is_segmentor = any(k.startswith(("decode_head.", "auxiliary_head.")) for k in all_keys)
        return "mmseg" if is_segmentor or location == "" else "mmpretrain"
    if not any(_TIMM_BLOCK.match(k) for k in inner):
        return None
    if prefix == "backbone.":
        return "mm_task"
    if any(marker in k for k in inner for marker in _BEIT_MARKERS):
        return "beit"
    if any(k == "dist_token" or k.startswith("head_dist.") for k in inner):
        return "deit_distilled"
    if any(k.startswith(_DECODER_MARKERS) for k in inner):
        return "mae_full"
    if location == "['model']":
        has_fc_norm = any(k.startswith("fc_norm.") for k in inner)
        if has_fc_norm and not any(k.startswith("norm.") for k in inner):
            return "mae_finetuned"
        if any(k.startswith("head.") for k in inner):
            return "supervised"
        return "mae"
    return "timm"
