"""Audit tables of layer-decay parameter groups: what lr and weight decay each parameter gets.

The rows are read back from the parameter groups themselves (those returned by
:func:`~mae_transfer.optim.param_groups` or an optimizer's ``param_groups``), so the table shows
what the optimizer actually holds, not a recomputation of the rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

__all__ = [
    "AuditRow",
    "LayerSummary",
    "audit_rows",
    "format_audit_table",
    "format_layer_summary",
    "layer_summary",
]

_GROUP_KEYS = ("params", "param_names", "layer_id", "lr_scale", "lr", "weight_decay")


@dataclass(frozen=True)
class AuditRow:
    """One trainable parameter and the optimization settings of its group."""

    name: str
    shape: tuple[int, ...]
    layer_id: int
    lr_scale: float
    lr: float
    weight_decay: float


@dataclass(frozen=True)
class LayerSummary:
    """All parameters of one layer id: its lr scale and how many tensors/elements it holds."""

    layer_id: int
    lr_scale: float
    lr: float
    decay_tensors: int
    no_decay_tensors: int
    numel: int


def audit_rows(
    groups: Sequence[Mapping[str, Any]], model: nn.Module | None = None
) -> list[AuditRow]:
    """One row per parameter of ``groups``, in group order.

    Args:
        groups: Layer-decay parameter groups (each with the keys ``params``, ``param_names``,
            ``layer_id``, ``lr_scale``, ``lr`` and ``weight_decay``).
        model: When given, check that the groups hold every trainable parameter of the model
            exactly once and nothing else.

    Raises:
        ValueError: A group lacks a key, names and params disagree, a parameter is listed
            twice, or (with ``model``) a trainable parameter is missing or a foreign one present.
    """
    rows: list[AuditRow] = []
    seen: dict[int, str] = {}
    for index, group in enumerate(groups):
        missing = [key for key in _GROUP_KEYS if key not in group]
        if missing:
            raise ValueError(f"layer-decay audit: param group {index} lacks key(s) {missing}")
        params, names = list(group["params"]), list(group["param_names"])
        if len(params) != len(names):
            raise ValueError(
                f"layer-decay audit: param group {index} holds {len(params)} params but "
                f"{len(names)} param_names"
            )
        for name, param in zip(names, params):
            if id(param) in seen:
                raise ValueError(
                    f"layer-decay audit: parameter {name!r} (group {index}) is also listed as "
                    f"{seen[id(param)]!r}; expected each parameter exactly once"
                )
            seen[id(param)] = name
            rows.append(
                AuditRow(
                    name=name,
                    shape=tuple(param.shape),
                    layer_id=int(group["layer_id"]),
                    lr_scale=float(group["lr_scale"]),
                    lr=float(group["lr"]),
                    weight_decay=float(group["weight_decay"]),
                )
            )
    if model is not None:
        trainable = {id(p): n for n, p in model.named_parameters() if p.requires_grad}
        absent = sorted(trainable[i] for i in trainable.keys() - seen.keys())
        foreign = sorted(seen[i] for i in seen.keys() - trainable.keys())
        if absent or foreign:
            raise ValueError(
                f"layer-decay audit: param groups do not cover {type(model).__name__} exactly "
                f"once: missing trainable {absent[:10]}, not trainable in the model {foreign[:10]}"
            )
    return rows


def layer_summary(rows: Sequence[AuditRow]) -> list[LayerSummary]:
    """Aggregate rows per layer id, in increasing layer order."""
    by_layer: dict[int, list[AuditRow]] = {}
    for row in rows:
        by_layer.setdefault(row.layer_id, []).append(row)
    summaries = []
    for layer_id in sorted(by_layer):
        layer_rows = by_layer[layer_id]
        numel = sum(_numel(row.shape) for row in layer_rows)
        decay = sum(1 for row in layer_rows if row.weight_decay > 0)
        summaries.append(
            LayerSummary(
                layer_id=layer_id,
                lr_scale=layer_rows[0].lr_scale,
                lr=layer_rows[0].lr,
                decay_tensors=decay,
                no_decay_tensors=len(layer_rows) - decay,
                numel=numel,
            )
        )
    return summaries


def _numel(shape: tuple[int, ...]) -> int:
    total = 1
    for size in shape:
        total *= size
    return total


def _table(header: Sequence[str], body: Sequence[Sequence[str]], right: set[int]) -> str:
    widths = [max([len(header[i])] + [len(line[i]) for line in body]) for i in range(len(header))]

    def render(cells: Sequence[str]) -> str:
        padded = (
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths))
        )
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([render(header), rule, *(render(line) for line in body)])


def format_audit_table(rows: Sequence[AuditRow]) -> str:
    """A fixed-width text table: parameter, shape, layer, lr scale, lr, weight decay."""
    header = ("parameter", "shape", "layer", "lr_scale", "lr", "weight_decay")
    body = [
        (
            row.name,
            "x".join(str(s) for s in row.shape) or "scalar",
            str(row.layer_id),
            f"{row.lr_scale:.6g}",
            f"{row.lr:.6g}",
            f"{row.weight_decay:g}",
        )
        for row in rows
    ]
    return _table(header, body, right={2, 3, 4, 5})


def format_layer_summary(rows: Sequence[AuditRow]) -> str:
    """A per-layer text table: layer, lr scale, lr, decayed / exempt tensors, elements."""
    header = ("layer", "lr_scale", "lr", "decay_tensors", "no_decay_tensors", "numel")
    body = [
        (
            str(s.layer_id),
            f"{s.lr_scale:.6g}",
            f"{s.lr:.6g}",
            str(s.decay_tensors),
            str(s.no_decay_tensors),
            str(s.numel),
        )
        for s in layer_summary(rows)
    ]
    return _table(header, body, right=set(range(6)))
