"""Transfer protocols: which parameters of a classifier train (MAE §4.3, Fig. 9; appendix A.1 "Linear
probing" and "Partial fine-tuning").

The one protocol vocabulary of the suite, spelled as a matrix writes it (``protocol:``) and as a
config's ``model.protocol`` takes it:

- ``finetune``: every parameter trains; global average pooling of the patch tokens (cls
  excluded) + ``fc_norm`` + head, the backbone's final norm dropped (MAE ``global_pool``).
- ``linear``: only ``head`` trains; the cls token after the backbone's final norm, then
  ``BatchNorm1d(affine=False)`` (MAE ``main_linprobe.py``), so the head is the only
  parameterised module that learns and the backbone stays bit-identical.
- ``partial-K``: the last K blocks, the final norm (``fc_norm``, which replaces the backbone's
  norm in the pooled head) and the head train; everything else is frozen. ``partial-0`` is the
  linear probe (MAE Fig. 9's 0-block point). A config may also write it
  ``dict(name="partial", num_blocks=K)``, so that ``model.protocol.num_blocks=K`` overrides it.
- ``partial-mlp``: the MLP sub-block of the last block (its ``norm2`` and ``mlp``), ``fc_norm``
  and the head train (Fig. 9's "MLP of the last block" point).

The classifier (:class:`mae_transfer.classification.model.MAEClassifier`) has a ``backbone``
(:class:`~mae_transfer.models.MAEViT`), an optional ``fc_norm`` (LayerNorm after global
average pooling), an optional ``head_norm`` (BatchNorm1d without affine parameters) and a
linear ``head``. This module imports neither torch nor mm* (the matrix spec parses with it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

# Protocol.name values; "partial" carries num_blocks (spelled partial-K).
PROTOCOLS = ("finetune", "linear", "partial", "partial-mlp")
PROTOCOLS_TEXT = "finetune, linear, partial-K (K >= 1 blocks), partial-mlp"
# Earlier config spellings of a protocol name -> its name.
ALIASES = {"mlp_last_block": "partial-mlp"}
_PARTIAL_K = re.compile(r"\Apartial-(\d+)\Z")


@dataclass(frozen=True)
class Protocol:
    """A transfer protocol.

    Attributes:
        name: one of ``finetune``, ``linear``, ``partial``, ``partial-mlp``.
        num_blocks: for ``partial``: how many of the last blocks train.
    """

    name: str = "finetune"
    num_blocks: int = 0

    def __post_init__(self) -> None:
        if self.name not in PROTOCOLS:
            raise ValueError(f"model.protocol: unknown protocol {self.name!r}; expected one of {PROTOCOLS_TEXT}")
        if self.num_blocks < 0:
            raise ValueError(f"model.protocol.num_blocks: expected >= 0, got {self.num_blocks}")
        if self.num_blocks and self.name != "partial":
            raise ValueError(f"model.protocol.num_blocks is only meaningful for 'partial', not {self.name!r}")

    @property
    def spelling(self) -> str:
        """The matrix spelling: ``finetune``, ``linear``, ``partial-K`` or ``partial-mlp``."""
        return f"partial-{self.num_blocks}" if self.name == "partial" else self.name

    @classmethod
    def from_spelling(cls, text: str) -> Protocol:
        """From a matrix spelling (``partial-K`` with K >= 1, no aliases); ValueError otherwise."""
        match = _PARTIAL_K.match(text)
        if match and int(match.group(1)) >= 1:
            return cls("partial", int(match.group(1)))
        if text in PROTOCOLS and text != "partial":
            return cls(text)
        raise ValueError(f"{text!r} is not allowed; allowed values: {PROTOCOLS_TEXT}")

    @classmethod
    def parse(cls, value: str | dict[str, Any] | Protocol) -> Protocol:
        """From a config's ``model.protocol``: ``"partial-2"``, ``dict(name="partial", num_blocks=2)``,
        an ``ALIASES`` name or a Protocol.

        ``partial`` with ``num_blocks=0`` is normalised to ``linear``.
        """
        if isinstance(value, Protocol):
            protocol = value
        elif isinstance(value, str):
            match = _PARTIAL_K.match(value)
            protocol = cls("partial", int(match.group(1))) if match else cls(ALIASES.get(value, value))
        elif isinstance(value, dict):
            unknown = set(value) - {"name", "num_blocks"}
            if unknown:
                raise ValueError(f"model.protocol: unknown key(s) {sorted(unknown)}; expected 'name', 'num_blocks'")
            name = value.get("name", "finetune")
            protocol = cls(ALIASES.get(name, name), value.get("num_blocks", 0))
        else:
            raise TypeError(f"model.protocol: expected a name or a dict, got {type(value).__name__}")
        if protocol.name == "partial" and protocol.num_blocks == 0:
            return cls("linear")
        return protocol

    @property
    def pool(self) -> str:
        """``cls`` (cls token after the final norm) for the linear probe, else ``avg``."""
        return "cls" if self.name == "linear" else "avg"

    @property
    def head_batchnorm(self) -> bool:
        """Whether a BatchNorm1d without affine parameters precedes the head."""
        return self.name == "linear"

    @property
    def default_head_init_std(self) -> float:
        """MAE's head init: trunc_normal std 2e-5 for fine-tuning, 0.01 for the linear probe."""
        return 0.01 if self.name == "linear" else 2e-5


def trainable(name: str, protocol: Protocol, depth: int) -> bool:
    """Whether the classifier parameter ``name`` trains under ``protocol`` (backbone ``depth``)."""
    if protocol.name == "finetune":
        return True
    if name.startswith("head."):
        return True
    if protocol.name == "linear":
        return False
    if name.startswith("fc_norm."):
        return True
    if protocol.name == "partial":
        if protocol.num_blocks > depth:
            raise ValueError(f"model.protocol.num_blocks: {protocol.num_blocks} exceeds the backbone depth {depth}")
        first = depth - protocol.num_blocks
        return any(name.startswith(f"backbone.blocks.{index}.") for index in range(first, depth))
    last = f"backbone.blocks.{depth - 1}."
    return name.startswith(last + "mlp.") or name.startswith(last + "norm2.")


def apply_protocol(model: nn.Module, protocol: Protocol, depth: int) -> list[str]:
    """Set ``requires_grad`` of every parameter of ``model`` by ``protocol``; returns the trainable names."""
    names = []
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(trainable(name, protocol, depth))
        if parameter.requires_grad:
            names.append(name)
    return names
