"""MAE's LARS (official util/lars.py semantics): the first updates on a toy model, by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mae_transfer.optim import LARS

LR = 6.4  # MAE linear probe: blr 0.1 x 16384 / 256
TRUST = 0.001


def _toy() -> tuple[nn.Linear, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Linear(6, 4)  # weight (4, 6): trust ratio; bias (4,): plain momentum SGD
    inputs, labels = torch.randn(8, 6), torch.randint(0, 4, (8,))
    return model, inputs, labels


def _gradients(model: nn.Linear, inputs: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad()
    nn.functional.cross_entropy(model(inputs), labels).backward()
    return {name: p.grad.detach().clone() for name, p in model.named_parameters()}


def _mae_rule(weight: torch.Tensor, grad: torch.Tensor, weight_decay: float) -> torch.Tensor:
    """The direction MAE's LARS gives a 2-D parameter, written out element by element."""
    decayed = [[grad[i][j].item() + weight_decay * weight[i][j].item() for j in range(weight.shape[1])]
               for i in range(weight.shape[0])]
    weight_norm = math.sqrt(sum(v.item() ** 2 for v in weight.flatten()))
    decayed_norm = math.sqrt(sum(v ** 2 for row in decayed for v in row))
    ratio = TRUST * weight_norm / decayed_norm
    return torch.tensor([[ratio * v for v in row] for row in decayed])


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_first_update_follows_mae_rule(weight_decay: float) -> None:
    model, inputs, labels = _toy()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    grads = _gradients(model, inputs, labels)
    LARS(model.parameters(), lr=LR, weight_decay=weight_decay).step()

    # matrix: trust ratio on (grad + wd * w), also with wd 0; momentum buffer starts at zero
    expected_weight = before["weight"] - LR * _mae_rule(before["weight"], grads["weight"], weight_decay)
    torch.testing.assert_close(model.weight.detach(), expected_weight, rtol=1e-5, atol=1e-7)
    # bias (1-D): no weight decay, no trust ratio
    torch.testing.assert_close(model.bias.detach(), before["bias"] - LR * grads["bias"], rtol=1e-6, atol=1e-7)


def test_weight_update_differs_from_plain_sgd_with_zero_weight_decay() -> None:
    model, inputs, labels = _toy()
    sgd_model, _, _ = _toy()
    _gradients(model, inputs, labels)
    _gradients(sgd_model, inputs, labels)
    LARS(model.parameters(), lr=LR, weight_decay=0.0).step()
    torch.optim.SGD(sgd_model.parameters(), lr=LR, momentum=0.9).step()
    lars_step = (model.weight - sgd_model.weight).abs().max().item()
    assert lars_step > 1e-3, "the trust ratio must scale the 2-D update even with weight decay 0"
    torch.testing.assert_close(model.bias, sgd_model.bias)


def test_second_update_accumulates_momentum() -> None:
    model, inputs, labels = _toy()
    optimizer = LARS(model.parameters(), lr=LR, weight_decay=0.0, momentum=0.9)
    first_weight = model.weight.detach().clone()
    grads = _gradients(model, inputs, labels)
    optimizer.step()
    direction_1 = _mae_rule(first_weight, grads["weight"], 0.0)
    second_weight = model.weight.detach().clone()
    grads = _gradients(model, inputs, labels)
    optimizer.step()
    direction_2 = _mae_rule(second_weight, grads["weight"], 0.0)
    expected = second_weight - LR * (0.9 * direction_1 + direction_2)
    torch.testing.assert_close(model.weight.detach(), expected, rtol=1e-5, atol=1e-7)


def test_zero_weight_gets_no_trust_ratio() -> None:
    weight = nn.Parameter(torch.zeros(3, 2))
    weight.grad = torch.ones(3, 2)
    LARS([weight], lr=0.5, momentum=0.0).step()
    torch.testing.assert_close(weight.detach(), torch.full((3, 2), -0.5))


def test_parameters_without_gradient_are_left_alone() -> None:
    frozen = nn.Parameter(torch.ones(2, 2))
    optimizer = LARS([frozen], lr=1.0)
    optimizer.step()
    torch.testing.assert_close(frozen.detach(), torch.ones(2, 2))
    assert not optimizer.state


def test_state_dict_round_trip_keeps_the_momentum() -> None:
    model, inputs, labels = _toy()
    optimizer = LARS(model.parameters(), lr=LR)
    _gradients(model, inputs, labels)
    optimizer.step()
    restored = LARS(model.parameters(), lr=LR)
    restored.load_state_dict(optimizer.state_dict())
    buffer = optimizer.state[model.weight]["momentum_buffer"]
    torch.testing.assert_close(restored.state[model.weight]["momentum_buffer"], buffer)


def test_negative_hyperparameters_are_refused() -> None:
    with pytest.raises(ValueError, match="trust_coefficient"):
        LARS([nn.Parameter(torch.ones(1))], lr=1.0, trust_coefficient=-1.0)
