"""Weight-decay groups of the official MAE pre-training (``main_pretrain.py``).

The official script builds AdamW over ``optim_factory.add_weight_decay(model, weight_decay)``
of timm 0.3.2 with no skip list: frozen parameters (the fixed ``pos_embed`` and
``decoder_pos_embed``) are left out, parameters with one dimension or a name ending in
``.bias`` get no weight decay, everything else -- including ``cls_token`` and ``mask_token`` --
gets ``weight_decay``. The groups are ``[no_decay, decay]`` in ``named_parameters()`` order, so an
optimizer built over them has the official state-dict layout (parameter ids follow that order).
"""

from __future__ import annotations

from typing import Any

from torch import nn


def is_decay_exempt(name: str, parameter: nn.Parameter) -> bool:
    """The official rule: 1-D parameters and biases get no weight decay."""
    return parameter.ndim <= 1 or name.endswith(".bias")


def decay_split(model: nn.Module) -> tuple[list[str], list[str]]:
    """Names of the trainable parameters without and with weight decay, in ``named_parameters()`` order."""
    no_decay, decay = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (no_decay if is_decay_exempt(name, parameter) else decay).append(name)
    return no_decay, decay


def official_param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """``[{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]``."""
    parameters = dict(model.named_parameters())
    no_decay, decay = decay_split(model)
    return [
        {"params": [parameters[name] for name in no_decay], "weight_decay": 0.0},
        {"params": [parameters[name] for name in decay], "weight_decay": weight_decay},
    ]
