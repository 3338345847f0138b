"""LARS with the semantics of the official MAE linear probe (pure PyTorch).

MAE's ``util/lars.py`` (taken from MoCo v3, ``main_linprobe.py`` uses it for MAE Table 10)
updates every parameter ``p`` with gradient ``g`` as::

    if p.ndim > 1:                        # weight matrices / conv kernels
        d = g + weight_decay * p
        q = trust_coefficient * ||p|| / ||d||   (1 if ||p|| == 0 or ||d|| == 0)
        d = q * d
    else:                                 # biases, norm gains: no weight decay, no trust ratio
        d = g
    mu = momentum * mu + d                (mu starts at zero)
    p = p - lr * mu

The trust ratio is applied to every parameter with ``ndim > 1`` whatever the weight decay,
0 included. timm's ``Lars`` skips it when the weight decay is 0 (unless ``always_adapt=True``),
which turns MAE's lr 6.4 into plain SGD at lr 6.4; :class:`LARS` does not.

Written from the rule above (MAE ``util/lars.py``, defaults ``momentum=0.9``,
``trust_coefficient=0.001``); mmengine configs reach it as ``MAETransferLars`` through
``mae_transfer.integrations.classification``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

MAE_TRUST_COEFFICIENT = 0.001  # MAE util/lars.py default, not overridden by main_linprobe.py
MAE_MOMENTUM = 0.9  # MAE util/lars.py default; MAE Table 10 "optimizer momentum 0.9"


def lars_direction(
    param: torch.Tensor, grad: torch.Tensor, weight_decay: float, trust_coefficient: float
) -> torch.Tensor:
    """The LARS update direction of one parameter before momentum (see the module docstring).

    Args:
        param: the parameter's current value.
        grad: its gradient.
        weight_decay: added as ``weight_decay * param`` to the gradient of ``ndim > 1`` parameters.
        trust_coefficient: scale of the trust ratio ``||param|| / ||grad + wd * param||``.

    Returns:
        a new tensor: the scaled, decayed gradient for ``ndim > 1`` parameters, the gradient
        itself (a copy) otherwise.
    """
    if param.ndim <= 1:
        return grad.clone()
    direction = grad.add(param, alpha=weight_decay)
    param_norm = torch.linalg.vector_norm(param)
    direction_norm = torch.linalg.vector_norm(direction)
    one = torch.ones_like(param_norm)
    ratio = torch.where(
        (param_norm > 0) & (direction_norm > 0), trust_coefficient * param_norm / direction_norm, one
    )
    return direction.mul_(ratio)


class LARS(torch.optim.Optimizer):
    """Layer-wise adaptive rate scaling, MAE / MoCo v3 variant (see the module docstring).

    Args:
        params: parameters or parameter groups.
        lr: learning rate (MAE linear probe: 0.1 x batch / 256 = 6.4 at batch 16384).
        weight_decay: decay of ``ndim > 1`` parameters, inside the trust ratio (MAE: 0).
        momentum: heavy-ball momentum (MAE: 0.9).
        trust_coefficient: scale of the trust ratio (MAE: 0.001).
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float,
        weight_decay: float = 0.0,
        momentum: float = MAE_MOMENTUM,
        trust_coefficient: float = MAE_TRUST_COEFFICIENT,
    ) -> None:
        for name, value in (("lr", lr), ("weight_decay", weight_decay), ("momentum", momentum),
                            ("trust_coefficient", trust_coefficient)):
            if value < 0:
                raise ValueError(f"LARS: {name} must be >= 0, got {value}")
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, trust_coefficient=trust_coefficient)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        """One update of every parameter that has a gradient; returns the closure's loss if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                direction = lars_direction(param, param.grad, group["weight_decay"], group["trust_coefficient"])
                state = self.state[param]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(param)
                buffer = state["momentum_buffer"]
                buffer.mul_(group["momentum"]).add_(direction)
                param.add_(buffer, alpha=-group["lr"])
        return loss
