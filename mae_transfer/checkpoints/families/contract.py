"""The contract every family reader follows, and the helpers they share.

A reader recognises one family's file layout and returns a
:class:`~mae_transfer.checkpoints.convert.ConvertedCheckpoint`: the encoder tensors in the
suite's (timm) naming, every other stored key listed as dropped with its reason, the family's
name and the options the file tells (:func:`told_options` reads the structural ones off the
converted tensors; a ``config.json`` adds eps and activation). What the file cannot tell is
listed in ``must_declare`` with a hint; the loader then takes it from the model the user built
(its declared family or options), never from a guess.

Adding a family is one module with one :class:`FamilyReader` subclass, listed in
``families/__init__.py``'s ``READERS``, and one test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch

from mae_transfer.checkpoints.convert import ConvertedCheckpoint
from mae_transfer.checkpoints.errors import CheckpointError
from mae_transfer.checkpoints.report import DroppedKey
from mae_transfer.models.pos_embed import square_grid


@dataclass
class CheckpointFile:
    """What a reader looks at: the file's top-level object and, for HuggingFace, its config.

    Attributes:
        source: the path (the directory for a HuggingFace model), or ``<in-memory dict>``.
        container: ``torch``, ``safetensors`` or ``dict``.
        obj: the top-level object of the weights file.
        config: the parsed ``config.json`` of a HuggingFace model, else None.
        config_file: where that config was read from.
    """

    source: str
    container: str
    obj: Mapping[str, Any]
    config: dict[str, Any] | None = None
    config_file: str | None = None

    def tensors(self, location: str | None = None) -> dict[str, torch.Tensor]:
        """The tensors at the top level (or under ``obj[location]``) that are tensors."""
        mapping = self.obj if location is None else self.obj.get(location)
        if not isinstance(mapping, Mapping):
            return {}
        return {k: v for k, v in mapping.items() if isinstance(v, torch.Tensor)}


class FamilyReader:
    """One family's file layout. Subclasses set ``format``/``description`` and implement both methods."""

    format: str = ""
    description: str = ""

    def recognise(self, file: CheckpointFile) -> bool:
        """Whether ``file`` is in this reader's layout (cheap: keys and config only)."""
        raise NotImplementedError

    def read(self, file: CheckpointFile) -> ConvertedCheckpoint:
        """The converted checkpoint; CheckpointError for a file of this layout that is malformed."""
        raise NotImplementedError


@dataclass
class Conversion:
    """Accumulates a reader's output: renamed tensors, their stored names, dropped keys, notes."""

    file: CheckpointFile
    format: str
    family: str | None
    state_dict: dict[str, torch.Tensor] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)
    dropped: list[DroppedKey] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    told: dict[str, Any] = field(default_factory=dict)
    must_declare: dict[str, str] = field(default_factory=dict)

    def put(self, name: str, value: torch.Tensor, stored: str) -> None:
        """Store ``value`` under canonical ``name``; two different tensors for one name is an error."""
        if name in self.state_dict:
            raise CheckpointError(f"two stored tensors map to '{name}': '{self.origin[name]}' and '{stored}'",
                                  file=self.file.source, key=stored)
        self.state_dict[name] = value
        self.origin[name] = stored

    def drop(self, stored: str, reason: str) -> None:
        self.dropped.append(DroppedKey(stored, reason))

    def rename_all(
        self, tensors: Mapping[str, torch.Tensor], rename: Callable[[str], str | None], drops: tuple[tuple[str, str], ...]
    ) -> None:
        """Rename every tensor by ``rename``; keys matching a ``drops`` regex are dropped with its reason.

        A key that neither renames nor matches a drop rule is refused, naming it.
        """
        for key, value in tensors.items():
            reason = next((why for pattern, why in drops if re.search(pattern, key)), None)
            if reason is not None:
                self.drop(key, reason)
                continue
            name = rename(key)
            if name is None:
                raise CheckpointError(
                    f"{self.format}: key '{key}' (shape {tuple(value.shape)}) has no place in the suite's ViT; "
                    "this layout is not implemented",
                    file=self.file.source, key=key,
                )
            self.put(name, value, key)

    def fuse_qkv(self, parts: dict[int, dict[str, dict[str, torch.Tensor]]]) -> None:
        """``parts[block]['q'|'k'|'v'][weight|bias]`` -> ``blocks.{i}.attn.qkv.*``; a missing k bias is zero (BEiT)."""
        for block, qkv in sorted(parts.items()):
            for kind in ("weight", "bias"):
                present = {letter: qkv[letter].get(kind) for letter in "qkv" if letter in qkv}
                if all(v is None for v in present.values()):
                    continue
                if set(present) != set("qkv") or (kind == "weight" and None in present.values()):
                    raise CheckpointError(f"{self.format}: block {block} lacks one of query/key/value {kind}",
                                          file=self.file.source, key=f"block {block}")
                if present["k"] is None and present["q"] is not None:
                    present["k"] = torch.zeros_like(present["q"])
                    self.notes.append(f"block {block}: key has no bias (BEiT); qkv.bias uses a zero k bias")
                if any(v is None for v in present.values()):
                    raise CheckpointError(f"{self.format}: block {block} has a bias on only some of q/k/v",
                                          file=self.file.source, key=f"block {block}")
                self.put(f"blocks.{block}.attn.qkv.{kind}", torch.cat([present[c] for c in "qkv"]),
                         f"block {block} query/key/value {kind}")

    def result(self) -> ConvertedCheckpoint:
        """The ConvertedCheckpoint, with the options the tensors tell merged under the reader's."""
        fix_pos_embed_slot(self)
        told = {**told_options(self.state_dict), **self.told}
        return ConvertedCheckpoint(
            source=self.file.source, format=self.format, container=self.file.container,
            state_dict=self.state_dict, origin=self.origin, dropped=self.dropped, notes=self.notes,
            family=self.family, told=told, must_declare=dict(self.must_declare),
        )


def fix_pos_embed_slot(conversion: Conversion) -> None:
    """A cls token without a position slot (timm's ``no_embed_class``, DINOv2-reg in timm): add a zero slot.

    The cls token then carries its own position, as timm folded it in; the model adds 0: exact.
    """
    sd = conversion.state_dict
    pos, cls = sd.get("pos_embed"), sd.get("cls_token")
    if pos is None or cls is None or pos.dim() != 3 or square_grid(pos.shape[1]) is None:
        return
    if square_grid(pos.shape[1] - 1) is not None:
        return
    sd["pos_embed"] = torch.cat([pos.new_zeros(1, 1, pos.shape[2]), pos], dim=1)
    conversion.notes.append("pos_embed has no cls slot (timm no_embed_class: the cls token holds its position); "
                            "added a zero slot, which computes the same")


def told_options(state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """The encoder options a canonical state dict's keys and shapes tell (``EncoderOptions`` fields)."""
    told: dict[str, Any] = {}
    if "patch_embed.proj.weight" not in state_dict:
        return told
    pos = state_dict.get("pos_embed")
    # a window-attention model saved by the suite has no cls_token but keeps the table's cls slot
    slot = pos is not None and pos.dim() == 3 and square_grid(pos.shape[1]) is None and square_grid(pos.shape[1] - 1)
    told["class_token"] = "cls_token" in state_dict or bool(slot)
    reg = state_dict.get("reg_token")
    told["register_tokens"] = int(reg.shape[1]) if reg is not None and reg.dim() == 3 else 0
    told["pre_norm"] = "norm_pre.weight" in state_dict
    told["patch_bias"] = "patch_embed.proj.bias" in state_dict
    fc1, fc2 = state_dict.get("blocks.0.mlp.fc1.weight"), state_dict.get("blocks.0.mlp.fc2.weight")
    if fc1 is not None and fc2 is not None and fc1.dim() == 2 and fc2.dim() == 2:
        told["mlp"] = "swiglu" if fc1.shape[0] == 2 * fc2.shape[1] else "mlp"
    return told


HF_ACTIVATIONS = {"gelu": "gelu", "quick_gelu": "quick_gelu", "gelu_pytorch_tanh": "gelu_tanh", "gelu_new": "gelu_tanh",
                  "gelu_fast": None, "relu": None, "silu": None, "swish": None}


def hf_activation(config: Mapping[str, Any], file: CheckpointFile) -> str:
    """The suite's name of a config's ``hidden_act``; CheckpointError for one not implemented."""
    name = config.get("hidden_act", "gelu")
    ours = HF_ACTIVATIONS.get(name) if isinstance(name, str) else None
    if ours is None:
        raise CheckpointError(f"config.json hidden_act {name!r} is not implemented; the suite has gelu, "
                              "quick_gelu and gelu_pytorch_tanh/gelu_new", file=file.config_file or file.source,
                              key="hidden_act")
    return ours
