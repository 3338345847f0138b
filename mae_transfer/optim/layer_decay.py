"""Layer-wise learning-rate decay for fine-tuning an MAE-pretrained ViT.

Follows the official MAE fine-tuning recipe (He et al., "Masked Autoencoders Are Scalable
Vision Learners", util/lr_decay.py there): with ``num_layers = depth + 1``, the patch
embedding, ``cls_token`` and ``pos_embed`` sit at layer 0, block ``i`` at layer ``i + 1`` and
everything else (the backbone's final norm, and every module outside the backbone: heads,
necks, FPNs, decode heads) at layer ``num_layers``. A parameter at layer ``l`` trains with
``lr = base_lr * decay_rate ** (num_layers - l)``.

Layers are keyed on the module tree, never on parameter-name substrings: the backbone is the
one :class:`~mae_transfer.models.MAEViT` inside the model (found by ``isinstance``) and a
parameter is in block ``i`` when it is one of ``backbone.blocks[i].parameters()``.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from mae_transfer.models import MAEViT

__all__ = [
    "LayerAssignment",
    "LayerDecaySpec",
    "assign_layers",
    "find_backbone",
    "layer_id_for",
    "param_groups",
]


@dataclass(frozen=True)
class LayerDecaySpec:
    """How learning rate and weight decay vary over a model holding an MAE ViT.

    Attributes:
        decay_rate: Per-layer lr multiplier in (0, 1]; 1.0 disables the decay.
        num_layers: Layer id of everything above the last block; ``None`` takes the
            backbone's ``depth + 1`` (official MAE). A larger value scales the whole backbone
            down further; a smaller one is rejected because blocks would get scales above 1.
        no_decay_names: Extra glob patterns (``fnmatch``, case-sensitive) of parameters exempt
            from weight decay, on top of the fixed rules (every parameter with at most one
            dimension, the backbone's ``no_weight_decay()`` names, ``pos_embed`` and
            ``cls_token``). A pattern matches a parameter when it matches its full name in the
            model or any dot-aligned suffix of it, so ``"gamma"`` matches
            ``backbone.blocks.0.ls1.gamma`` and ``"decode_head.*"`` matches everything in the
            decode head. A pattern that matches no trainable parameter is an error (a typo).
    """

    decay_rate: float
    num_layers: int | None = None
    no_decay_names: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        rate = self.decay_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate):
            raise ValueError(
                f"LayerDecaySpec.decay_rate: expected a number in (0, 1], got {rate!r}"
            )
        if not 0.0 < float(rate) <= 1.0:
            raise ValueError(f"LayerDecaySpec.decay_rate: expected a value in (0, 1], got {rate}")
        layers = self.num_layers
        valid_int = isinstance(layers, int) and not isinstance(layers, bool)
        if layers is not None and (not valid_int or layers < 1):
            raise ValueError(
                f"LayerDecaySpec.num_layers: expected None or a positive int, got {layers!r}"
            )
        names = self.no_decay_names
        if isinstance(names, str) or not isinstance(names, Iterable):
            raise ValueError(
                f"LayerDecaySpec.no_decay_names: expected a list of glob patterns, got {names!r}"
            )
        names = tuple(names)
        for pattern in names:
            if not isinstance(pattern, str) or not pattern.strip():
                raise ValueError(
                    f"LayerDecaySpec.no_decay_names: expected non-empty strings, got {pattern!r}"
                )
        object.__setattr__(self, "decay_rate", float(rate))
        object.__setattr__(self, "no_decay_names", names)

    def lr_scale(self, layer_id: int, num_layers: int) -> float:
        """The lr multiplier of a parameter at ``layer_id`` when the top layer is ``num_layers``."""
        return self.decay_rate ** (num_layers - layer_id)


@dataclass(frozen=True)
class LayerAssignment:
    """Layer id and weight-decay exemption of one trainable parameter."""

    name: str
    layer_id: int
    no_weight_decay: bool


def find_backbone(model: nn.Module) -> tuple[str, MAEViT]:
    """Return ``(qualified_name, module)`` of the single ``MAEViT`` inside ``model``.

    Raises:
        ValueError: When the model holds no ``MAEViT`` or more than one.
    """
    found = [(name, module) for name, module in model.named_modules() if isinstance(module, MAEViT)]
    if not found:
        raise ValueError(
            f"layer decay: no mae_transfer.models.MAEViT inside {type(model).__name__}; "
            "expected exactly one (the backbone whose blocks define the layers)"
        )
    if len(found) > 1:
        where = ", ".join(repr(name or "<model>") for name, _ in found)
        raise ValueError(
            f"layer decay: {len(found)} MAEViT modules inside {type(model).__name__} ({where}); "
            "expected exactly one, since the layer ids of the others would be ambiguous"
        )
    return found[0]


def _matches(name: str, pattern: str) -> bool:
    parts = name.split(".")
    return any(fnmatch.fnmatchcase(".".join(parts[i:]), pattern) for i in range(len(parts)))


def _backbone_num_layers(backbone: MAEViT, spec: LayerDecaySpec) -> int:
    depth = backbone.depth  # the architecture's; a maps-only backbone may build fewer blocks
    if spec.num_layers is None:
        return depth + 1
    if spec.num_layers < depth + 1:
        raise ValueError(
            f"LayerDecaySpec.num_layers: expected at least depth + 1 = {depth + 1} for a "
            f"backbone with {depth} blocks, got {spec.num_layers} (blocks would get lr scales "
            "above 1)"
        )
    return spec.num_layers


def assign_layers(model: nn.Module, spec: LayerDecaySpec) -> tuple[list[LayerAssignment], int]:
    """Assign every trainable parameter of ``model`` a layer id and a weight-decay rule.

    Returns:
        The assignments in ``model.named_parameters()`` order (shared parameters once) and the
        resolved ``num_layers``.

    Raises:
        ValueError: No or several ``MAEViT`` inside the model, a ``num_layers`` below
            ``depth + 1``, or a ``no_decay_names`` pattern that matches no trainable parameter.
    """
    _, backbone = find_backbone(model)
    num_layers = _backbone_num_layers(backbone, spec)

    layer_of: dict[int, int] = {}
    for param in backbone.patch_embed.parameters():
        layer_of[id(param)] = 0
    embeddings = (backbone.cls_token, backbone.pos_embed)
    for param in embeddings:
        if isinstance(param, nn.Parameter):
            layer_of[id(param)] = 0
    for index, block in enumerate(backbone.blocks):
        for param in block.parameters():
            layer_of[id(param)] = index + 1

    exempt = {id(param) for param in embeddings if isinstance(param, nn.Parameter)}
    backbone_params = dict(backbone.named_parameters())
    for exempt_name in backbone.no_weight_decay():
        if exempt_name not in backbone_params:
            raise ValueError(
                f"layer decay: {type(backbone).__name__}.no_weight_decay() names {exempt_name!r}, "
                "which is not one of its parameters"
            )
        exempt.add(id(backbone_params[exempt_name]))

    unused = set(spec.no_decay_names)
    assignments = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        hits = {pattern for pattern in spec.no_decay_names if _matches(name, pattern)}
        unused -= hits
        no_wd = param.ndim <= 1 or id(param) in exempt or bool(hits)
        assignments.append(LayerAssignment(name, layer_of.get(id(param), num_layers), no_wd))
    if unused:
        raise ValueError(
            f"LayerDecaySpec.no_decay_names: pattern(s) {sorted(unused)} match no trainable "
            f"parameter of {type(model).__name__}; expected each to match at least one name"
        )
    return assignments, num_layers


def layer_id_for(model: nn.Module, param_name: str, spec: LayerDecaySpec | None = None) -> int:
    """Layer id of the parameter called ``param_name`` in ``model`` (see module docstring).

    Raises:
        KeyError: When ``param_name`` is not a trainable parameter of ``model``.
    """
    assignments, _ = assign_layers(model, spec or LayerDecaySpec(decay_rate=1.0))
    for assignment in assignments:
        if assignment.name == param_name:
            return assignment.layer_id
    raise KeyError(
        f"layer decay: {param_name!r} is not a trainable parameter of {type(model).__name__}"
    )


def param_groups(
    model: nn.Module, spec: LayerDecaySpec, base_lr: float, weight_decay: float
) -> list[dict[str, Any]]:
    """Optimizer parameter groups, one per (layer id, weight decay on/off) pair that occurs.

    Each group holds ``params``, ``param_names`` (torch's own key, kept in optimizer state
    dicts), ``lr = base_lr * lr_scale``, ``lr_scale``, ``weight_decay`` (``weight_decay`` or
    0.0) and ``layer_id``. Schedulers that scale every group's initial lr (mmengine's
    ParamSchedulers, torch's LRSchedulers) keep the ratio between groups; hooks that set lr
    from a schedule can multiply by ``lr_scale``. Frozen parameters are left out.

    Groups come in decreasing layer id (the weight-decayed group of a layer first), so the
    first group is the head's at ``lr_scale`` 1: loggers that report ``param_groups[0]``'s lr
    (mmengine's RuntimeInfoHook does) show the base lr, not the embeddings' decayed one.
    """
    assignments, num_layers = assign_layers(model, spec)
    named = dict(model.named_parameters())
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for assignment in assignments:
        key = (assignment.layer_id, assignment.no_weight_decay)
        if key not in groups:
            scale = spec.lr_scale(assignment.layer_id, num_layers)
            groups[key] = {
                "params": [],
                "param_names": [],
                "lr": base_lr * scale,
                "lr_scale": scale,
                "weight_decay": 0.0 if assignment.no_weight_decay else weight_decay,
                "layer_id": assignment.layer_id,
            }
        groups[key]["params"].append(named[assignment.name])
        groups[key]["param_names"].append(assignment.name)
    return [groups[key] for key in sorted(groups, key=lambda k: (-k[0], k[1]))]

