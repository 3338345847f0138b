"""HuggingFace model directories: finding the weights and config.json, and checking one against the other.

A transformers model is a directory with ``config.json`` and ``model.safetensors`` (or
``pytorch_model.bin``, or shards listed in ``model.safetensors.index.json``); a weights file
with a ``config.json`` beside it is read the same way. The config tells what the weights
cannot: the LayerNorm eps (``layer_norm_eps``; transformers' default 1e-12 is not the 1e-6 of
the MAE and DINOv2 weights, so it is always read) and the activation (``hidden_act``). Its
sizes (``hidden_size``, ``num_hidden_layers``, ``patch_size``, ``image_size``,
``num_register_tokens``) are checked against the tensors: a directory whose weights do not match
its config is refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import torch

from mae_transfer.checkpoints.convert import ConvertedCheckpoint
from mae_transfer.checkpoints.errors import CheckpointError
from mae_transfer.checkpoints.families.contract import CheckpointFile, Conversion, FamilyReader, hf_activation
from mae_transfer.models.pos_embed import square_grid

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")


def hf_weights_and_config(path: Path) -> tuple[list[Path], dict[str, Any], Path] | None:
    """(weights files, config, config path) of a HuggingFace directory or a weights file beside a config.

    Returns None for a file without a HuggingFace ``config.json`` beside it.

    Raises:
        CheckpointError: a directory without ``config.json`` or without weights, an unreadable
            config, or a shard index naming missing files.
    """
    folder = path if path.is_dir() else path.parent
    config_path = folder / "config.json"
    if path.is_dir() and not config_path.is_file():
        found = sorted(p.name for p in path.iterdir())[:10]
        raise CheckpointError(
            f"a directory without config.json (found {found}); a HuggingFace model directory holds config.json "
            "and model.safetensors or pytorch_model.bin; for another checkpoint name the file itself",
            file=str(path),
        )
    if not config_path.is_file():
        return None
    config = _read_config(config_path)
    if config is None:
        if path.is_dir():
            raise CheckpointError("config.json has no 'model_type': not a HuggingFace transformers config",
                                  file=str(config_path), key="model_type")
        return None
    if path.is_file():
        return [path], config, config_path
    for name in WEIGHT_FILES:
        candidate = path / name
        if candidate.is_file():
            return (_shards(candidate) if name.endswith(".index.json") else [candidate]), config, config_path
    raise CheckpointError(f"no weights in the model directory: expected one of {list(WEIGHT_FILES)} beside config.json",
                          file=str(path))


def _read_config(path: Path) -> dict[str, Any] | None:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"unreadable config.json ({error})", file=str(path)) from error
    if not isinstance(config, dict) or "model_type" not in config:
        return None
    return config


def _shards(index: Path) -> list[Path]:
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"unreadable shard index ({error})", file=str(index), key="weight_map") from error
    files = [index.parent / name for name in sorted(set(weight_map.values()))]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise CheckpointError(f"shards listed in the index are missing: {missing}", file=str(index))
    return files


def vision_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The vision part of a config (``vision_config`` of a CLIPModel/SiglipModel, else the config)."""
    nested = config.get("vision_config")
    return nested if isinstance(nested, Mapping) else config


class HFReader(FamilyReader):
    """Base of the HuggingFace readers: recognised by ``config.json``'s ``model_type``.

    Subclasses set ``model_types`` (model_type -> family) and implement :meth:`convert`.
    """

    model_types: dict[str, str] = {}

    def recognise(self, file: CheckpointFile) -> bool:
        return file.config is not None and file.config.get("model_type") in self.model_types

    def read(self, file: CheckpointFile) -> ConvertedCheckpoint:
        config = file.config or {}
        conversion = Conversion(file, self.format, self.model_types[config["model_type"]])
        self.convert(file, conversion, file.tensors())
        vision = vision_config(config)
        conversion.told["norm_eps"] = float(vision.get("layer_norm_eps", 1e-12))
        conversion.told["activation"] = hf_activation(vision, file)
        conversion.notes.append(
            f"config.json: layer_norm_eps {conversion.told['norm_eps']}, hidden_act {vision.get('hidden_act', 'gelu')!r}"
        )
        converted = conversion.result()
        check_against_config(converted, vision, file)
        return converted

    def convert(self, file: CheckpointFile, conversion: Conversion, tensors: dict[str, torch.Tensor]) -> None:
        raise NotImplementedError


def check_against_config(converted: ConvertedCheckpoint, config: Mapping[str, Any], file: CheckpointFile) -> None:
    """Refuse weights whose shapes contradict the sizes in config.json (naming the key and both values)."""
    sd = converted.state_dict
    patch = sd.get("patch_embed.proj.weight")
    if patch is None:
        raise CheckpointError("no patch embedding among the weights", file=file.source,
                              key="embeddings.patch_embeddings.projection.weight")
    blocks = {int(k.split(".")[1]) for k in sd if k.startswith("blocks.")}
    found: dict[str, Any] = {"hidden_size": int(patch.shape[0]), "num_hidden_layers": len(blocks),
                             "patch_size": int(patch.shape[-1])}
    pos = sd.get("pos_embed")
    if pos is not None and pos.dim() == 3:
        grid = square_grid(pos.shape[1] - (1 if "cls_token" in sd else 0))
        if grid is not None:
            found["image_size"] = grid[0] * found["patch_size"]
    if "num_register_tokens" in config:
        found["num_register_tokens"] = converted.told.get("register_tokens", 0)
    for key, value in found.items():
        expected = config.get(key)
        if isinstance(expected, (list, tuple)):
            expected = expected[0]
        if expected is not None and int(expected) != value:
            raise CheckpointError(
                f"the weights do not match config.json: {key} is {expected} in the config but {value} in the weights",
                file=file.config_file or file.source, key=key, expected=expected, found=value,
            )
