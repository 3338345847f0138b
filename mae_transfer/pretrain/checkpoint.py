"""Official-format MAE pre-training checkpoints: write, read, check, load and rebuild.

The official ``main_pretrain.py`` (``util/misc.save_model``) writes
``OUTPUT_DIR/checkpoint-{epoch}.pth`` holding ``{'model', 'optimizer', 'epoch', 'scaler', 'args'}``,
where ``epoch`` is the 0-based index of the last finished epoch (``checkpoint-799.pth`` holds
800 epochs; its ``--resume`` continues at ``epoch + 1``). We write the same keys with contents
that ``torch.load(weights_only=True)`` accepts: ``args`` is a plain dict with the official
argument names (the official file pickles an ``argparse.Namespace``), tensors are on the CPU, and
``scaler`` is a ``GradScaler`` state (a fresh scaler's when no loss scaling ran, since the
official resume refuses an empty one).

Reading goes through :func:`mae_transfer.checkpoints.read_checkpoint` (nothing from the file is
executed); official files with a pickled Namespace are read too, their ``args`` then unknown.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from mae_transfer.checkpoints import CheckpointError, arch_shape, read_checkpoint
from mae_transfer.checkpoints.arch import arch_name
from mae_transfer.models.archs import ARCHS
from mae_transfer.models.pos_embed import square_grid
from mae_transfer.pretrain.model import MaskedAutoencoderViT
from mae_transfer.records import atomic_path

OFFICIAL_KEYS = ("model", "optimizer", "epoch", "scaler", "args")
# A fresh torch.cuda.amp.GradScaler's state_dict (torch defaults).
FRESH_SCALER_STATE = {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000,
                      "_growth_tracker": 0}
MODEL_CONFIG_ARG = "mae_transfer_model"  # args entry holding MaskedAutoencoderViT.config()
DECODER_MARKERS = ("mask_token", "decoder_")
_DECODER_BLOCK = re.compile(r"^decoder_blocks\.(\d+)\.")


def _check_plain(value: Any, where: str) -> None:
    if value is None or isinstance(value, (bool, int, float, str)):
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_plain(item, f"{where}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: keys must be strings, got {key!r}")
            _check_plain(item, f"{where}.{key}")
        return
    raise TypeError(f"{where}: {type(value).__name__} is not weights_only-safe; use plain numbers, strings, "
                    "lists and dicts")


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {key: _to_cpu(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(item) for item in value)
    return value


def save_official_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    epoch: int,
    args: Mapping[str, Any],
    optimizer_state: Mapping[str, Any] | None = None,
    scaler_state: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``{'model', 'optimizer', 'epoch', 'scaler', 'args'}`` atomically (temporary file + rename).

    Args:
        path: the file (by convention ``work_dir / checkpoint_name(epoch)``).
        model: the MAE (its ``state_dict()`` is stored under ``model``).
        epoch: 0-based index of the last finished epoch, as the official script stores it.
        args: run arguments (official names: ``model``, ``input_size``, ``mask_ratio``,
            ``norm_pix_loss``, ``batch_size``, ``epochs``, ``blr``, ``lr``...); plain values only.
        optimizer_state: ``optimizer.state_dict()``; the key is left out when None.
        scaler_state: ``GradScaler.state_dict()``; None or empty writes a fresh scaler's state.

    Raises:
        TypeError: ``args`` holds something ``torch.load(weights_only=True)`` would refuse.
    """
    _check_plain(dict(args), "args")
    payload: dict[str, Any] = {"model": _to_cpu(model.state_dict())}
    if optimizer_state is not None:
        payload["optimizer"] = _to_cpu(dict(optimizer_state))
    payload["epoch"] = int(epoch)
    payload["scaler"] = dict(scaler_state) if scaler_state else dict(FRESH_SCALER_STATE)
    payload["args"] = dict(args)
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


@dataclass
class OfficialCheckpoint:
    """An MAE pre-training checkpoint as read (safely) from disk.

    Attributes:
        source: the file.
        model: the state dict (official names).
        optimizer: the optimizer state, if stored.
        epoch: 0-based index of the last finished epoch, if stored.
        scaler: the GradScaler state, if stored.
        args: the run arguments when stored as a dict (ours); empty for an official pickled Namespace.
        notes: what could not be read and why.
    """

    source: str
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any] | None = None
    epoch: int | None = None
    scaler: dict[str, Any] | None = None
    args: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def has_decoder(self) -> bool:
        """Whether the decoder is stored (our checkpoints and the official ``_full``/visualize ones)."""
        return any(key.startswith(DECODER_MARKERS) for key in self.model)


def read_official_checkpoint(path: str | os.PathLike) -> OfficialCheckpoint:
    """Read an MAE pre-training checkpoint (``{'model': ...}`` plus optional training state).

    Raises:
        CheckpointError: unreadable file, or no state dict of tensors under ``model``.
    """
    raw = read_checkpoint(path)
    obj = raw.obj
    model = obj.get("model") if isinstance(obj.get("model"), Mapping) else None
    if model is None and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        model = obj
    if not model or not all(isinstance(v, torch.Tensor) for v in model.values()):
        raise CheckpointError(
            f"expected the official MAE layout {{'model': state_dict, ...}}, found top-level keys {list(obj)[:8]}",
            file=raw.source,
            key="model",
        )
    result = OfficialCheckpoint(source=raw.source, model=dict(model))
    if isinstance(obj.get("optimizer"), Mapping):
        result.optimizer = dict(obj["optimizer"])
    if isinstance(obj.get("epoch"), int):
        result.epoch = obj["epoch"]
    if isinstance(obj.get("scaler"), Mapping):
        result.scaler = dict(obj["scaler"])
    args = obj.get("args")
    if isinstance(args, Mapping):
        result.args = dict(args)
    elif args is not None:
        result.notes.append(f"args stored as {type(args).__name__} (an argparse.Namespace in official files); "
                            "not read")
    return result


def _decoder_depth(state_dict: Mapping[str, torch.Tensor]) -> int:
    indices = {int(m.group(1)) for key in state_dict if (m := _DECODER_BLOCK.match(key))}
    return max(indices) + 1 if indices else 0


def check_against_model(checkpoint: OfficialCheckpoint, model: MaskedAutoencoderViT) -> None:
    """Raise a :class:`CheckpointError` naming the key unless the checkpoint loads strictly into ``model``.

    Checked in order: the decoder is stored, its width and depth, the encoder's width, depth
    and patch size, then every key and shape.
    """
    file, stored, expected = checkpoint.source, checkpoint.model, model.state_dict()
    if not checkpoint.has_decoder:
        raise CheckpointError(
            "no MAE decoder in the checkpoint (no mask_token / decoder_* keys): an encoder-only release "
            "cannot continue pre-training; use an official _full or visualize checkpoint or one written here",
            file=file,
        )
    key = "decoder_embed.weight"
    if key in stored and stored[key].shape[0] != expected[key].shape[0]:
        raise CheckpointError(
            f"decoder width {stored[key].shape[0]} differs from the model's decoder.embed_dim "
            f"{expected[key].shape[0]}",
            file=file, key=key, expected=tuple(expected[key].shape), found=tuple(stored[key].shape),
        )
    depths = (_decoder_depth(stored), _decoder_depth(expected))
    if depths[0] != depths[1]:
        raise CheckpointError(
            f"{depths[0]} decoder blocks in the checkpoint, the model's decoder.depth is {depths[1]}",
            file=file, key=f"decoder_blocks.{min(depths)}",
        )
    shapes = (arch_shape(stored), arch_shape(expected))
    if shapes[0] is not None and shapes[0] != shapes[1]:
        raise CheckpointError(
            f"encoder {shapes[0].describe()} does not match the model's {shapes[1].describe()}",
            file=file, key="patch_embed.proj.weight",
        )
    missing = [k for k in expected if k not in stored]
    unexpected = [k for k in stored if k not in expected]
    if missing or unexpected:
        raise CheckpointError(
            f"keys differ from the model: missing {missing[:5]}, unexpected {unexpected[:5]}",
            file=file, key=(missing or unexpected)[0],
        )
    for name, tensor in stored.items():
        if tensor.shape != expected[name].shape:
            raise CheckpointError("shape differs from the model's", file=file, key=name,
                                  expected=tuple(expected[name].shape), found=tuple(tensor.shape))


def load_official_checkpoint(model: MaskedAutoencoderViT, source: str | os.PathLike) -> OfficialCheckpoint:
    """Check and load a checkpoint's weights (encoder and decoder) into ``model``; returns the checkpoint.

    The model is untouched when the check fails.
    """
    checkpoint = read_official_checkpoint(source)
    check_against_model(checkpoint, model)
    with torch.no_grad():
        model.load_state_dict(checkpoint.model, strict=True)
    return checkpoint


def model_config_from_checkpoint(checkpoint: OfficialCheckpoint) -> dict[str, Any]:
    """:class:`MaskedAutoencoderViT` keywords for a checkpoint: its stored config, else read off its shapes.

    From shapes, the encoder's heads come from its arch when known (else one per 64 channels),
    the decoder's heads are 16 (every official decoder) when they divide the width, and
    ``norm_pix_loss`` is False (an official file does not say; pass it explicitly if known).
    """
    stored = checkpoint.args.get(MODEL_CONFIG_ARG)
    if isinstance(stored, Mapping):
        return dict(stored)
    sd = checkpoint.model
    shape = arch_shape(sd)
    if shape is None or "pos_embed" not in sd or "decoder_embed.weight" not in sd:
        raise CheckpointError("cannot read the MAE shape: expected patch_embed.proj.weight, pos_embed and "
                              "decoder_embed.weight", file=checkpoint.source)
    name = arch_name(shape)
    heads = ARCHS[name].num_heads if name else max(1, shape.embed_dim // 64)
    tokens = int(sd["pos_embed"].shape[1])
    grid = square_grid(tokens - 1)
    if grid is None:
        raise CheckpointError(f"cannot read the MAE input size: pos_embed has {tokens} tokens, not a cls slot "
                              "plus a square grid", file=checkpoint.source, key="pos_embed")
    width = int(sd["decoder_embed.weight"].shape[0])
    config: dict[str, Any] = {
        "img_size": grid[0] * shape.patch_size,
        "patch_size": shape.patch_size,
        "in_chans": int(sd["patch_embed.proj.weight"].shape[1]),
        "embed_dim": shape.embed_dim,
        "depth": shape.depth,
        "num_heads": heads,
        "mlp_ratio": sd["blocks.0.mlp.fc1.weight"].shape[0] / shape.embed_dim,
        "decoder": {
            "embed_dim": width,
            "depth": _decoder_depth(sd),
            "num_heads": 16 if width % 16 == 0 else max(1, width // 64),
            "mlp_ratio": sd["decoder_blocks.0.mlp.fc1.weight"].shape[0] / width if _decoder_depth(sd) else 4.0,
        },
        "norm_pix_loss": bool(checkpoint.args.get("norm_pix_loss", False)),
    }
    if "mask_ratio" in checkpoint.args:
        config["mask_ratio"] = float(checkpoint.args["mask_ratio"])
    return config


def build_from_checkpoint(
    source: str | os.PathLike, **overrides: Any
) -> tuple[MaskedAutoencoderViT, OfficialCheckpoint]:
    """Rebuild the MAE a checkpoint was trained as (``overrides`` win, e.g. ``norm_pix_loss=True``) and load it."""
    checkpoint = read_official_checkpoint(source)
    if not checkpoint.has_decoder:
        raise CheckpointError("no MAE decoder in the checkpoint (no mask_token / decoder_* keys); only checkpoints "
                              "with the decoder can reconstruct images", file=checkpoint.source)
    config = {**model_config_from_checkpoint(checkpoint), **overrides}
    model = MaskedAutoencoderViT(**config)
    check_against_model(checkpoint, model)
    with torch.no_grad():
        model.load_state_dict(checkpoint.model, strict=True)
    return model, checkpoint


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: Mapping[str, Any], source: str) -> None:
    """Load an (official-layout) optimizer state, keeping group keys the saved groups lack (``initial_lr``).

    Raises:
        CheckpointError: group count or group sizes differ (another parameter split or model).
    """
    saved = state.get("param_groups", [])
    sizes = ([len(g["params"]) for g in saved], [len(g["params"]) for g in optimizer.param_groups])
    if sizes[0] != sizes[1]:
        raise CheckpointError(
            f"optimizer groups hold {sizes[0]} parameters, the model's optimizer {sizes[1]} (official layout: "
            "[no weight decay, weight decay] over the trainable parameters)",
            file=source, key="optimizer",
        )
    kept = [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]
    optimizer.load_state_dict(dict(state))
    for group, extra in zip(optimizer.param_groups, kept):
        for key, value in extra.items():
            group.setdefault(key, value)
