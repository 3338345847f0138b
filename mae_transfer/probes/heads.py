"""Grids of heads trained side by side on the same frozen features.

:class:`LinearSweep` is DINOv2's linear evaluation (``eval/linear.py``): one linear head per
(feature source, last n blocks, learning rate), weight ``normal(0, 0.01)``, bias 0, cross
entropy, SGD with momentum 0.9 and no weight decay, lr ``x batch x world / 256``, cosine to 0
over all iterations (``CosineAnnealingLR(max_iter, eta_min=0)``). The heads of one feature
source are stacked in one (H, K, D) weight and stepped by one momentum-SGD update with a
learning rate per head: H independent ``torch.optim.SGD`` runs (their losses are summed, and a
head's gradient depends on its own loss only). Its gradients are written in closed form into
buffers kept between steps, with no autograd graph (``LinearSweep.gradients``).

:class:`AttentiveGrid` is CAPI's attention-pooling probe (``eval_classification.py``
``AttnPoolClassifier``): a learned query (C) attends to the patch tokens through one key/value
projection (``kv``: C -> 2C, heads of 64 channels), then a linear head; every (lr, weight decay)
point is its own head with its own AdamW parameter groups (betas (0.9, 0.95), no decay on
biases), linear warm-up then cosine.

Both take the frozen tokens (``FrozenBackbone`` output) and give per-head logits (G, B, K).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mae_transfer.probes.features import feature_dim, patch_tokens, pooled

HEAD_INIT_STD = 0.01  # DINOv2 LinearClassifier: weight.normal_(0, 0.01), bias zero
ATTENTIVE_INIT_STD = 0.02  # CAPI AttnPoolClassifier.init_weights: trunc_normal std 0.02
ATTENTIVE_HEAD_CHANNELS = 64  # CAPI: num_heads = in_dim // 64


def scaled_lr(lr: float, batch_size: int, world: int) -> float:
    """DINOv2 ``scale_lr`` / CAPI: ``lr x batch x world / 256``."""
    return lr * batch_size * world / 256.0


def cosine_factor(iteration: int, total: int) -> float:
    """``CosineAnnealingLR(total, eta_min=0)`` at ``iteration``: 0.5 (1 + cos(pi t / T))."""
    return 0.5 * (1.0 + math.cos(math.pi * iteration / total))


def warmup_cosine_factor(iteration: int, total: int, warmup: int) -> float:
    """CAPI's schedule: linear 0 -> 1 over ``warmup`` iterations, then cosine 1 -> 0."""
    if iteration < warmup:
        return iteration / warmup
    return 0.5 * (1.0 + math.cos(math.pi * (iteration - warmup) / max(total - warmup, 1)))


@dataclass(frozen=True)
class HeadPoint:
    """One grid point: feature source, last n blocks (linear), lr, weight decay (attentive)."""

    source: str
    blocks: int
    lr: float
    weight_decay: float = 0.0

    @property
    def name(self) -> str:
        """``cls/last4/lr0.001`` or ``attentive/lr0.001/wd0.05``."""
        if self.source == "patch":
            return f"attentive/lr{self.lr:g}/wd{self.weight_decay:g}"
        return f"{self.source}/last{self.blocks}/lr{self.lr:g}"

    def to_json(self) -> dict:
        """The point's parameters."""
        point = {"name": self.name, "lr": self.lr}
        if self.source == "patch":
            point["weight_decay"] = self.weight_decay
        else:
            point.update(source=self.source, blocks=self.blocks)
        return point


class LinearSweep(nn.Module):
    """Linear heads over every (source, blocks, lr) point, one stacked weight per (source, blocks).

    Args:
        points: the grid (one head each), in grid order.
        embed_dim: token width C.
        num_classes: K.
        num_prefix: prefix tokens of the backbone (cls and registers).
        seed: every head starts from ``normal(0, 0.01)`` drawn by a generator seeded with it.
    """

    def __init__(self, points: list[HeadPoint], embed_dim: int, num_classes: int, num_prefix: int,
                 seed: int = 0) -> None:
        super().__init__()
        if not points:
            raise ValueError("probe.linear_sweep: empty grid; expected at least one head")
        self.points = list(points)
        self.num_prefix = num_prefix
        self.groups: list[tuple[str, int, list[int]]] = []  # (source, blocks, indices into points)
        for index, point in enumerate(self.points):
            group = next((g for g in self.groups if g[:2] == (point.source, point.blocks)), None)
            if group is None:
                self.groups.append((point.source, point.blocks, [index]))
            else:
                group[2].append(index)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for source, blocks, members in self.groups:
            dim = feature_dim(embed_dim, source, blocks)
            weight = torch.empty(len(members), num_classes, dim)
            for row in range(len(members)):
                weight[row].normal_(0.0, HEAD_INIT_STD, generator=torch.Generator().manual_seed(seed))
            self.weights.append(nn.Parameter(weight))
            self.biases.append(nn.Parameter(torch.zeros(len(members), num_classes)))

    @property
    def max_blocks(self) -> int:
        """The most blocks any head reads."""
        return max(point.blocks for point in self.points)

    def logits(self, tokens: list[torch.Tensor]) -> torch.Tensor:
        """Frozen tokens -> logits (G, B, K) in grid order."""
        out: list[torch.Tensor | None] = [None] * len(self.points)
        for (source, blocks, members), weight, bias in zip(self.groups, self.weights, self.biases):
            features = pooled(tokens, source, blocks, self.num_prefix)
            logits = torch.matmul(features, weight.transpose(1, 2)) + bias[:, None]  # (H, B, K)
            for row, index in enumerate(members):
                out[index] = logits[row]
        return torch.stack(out)

    @torch.no_grad()
    def gradients(self, tokens: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        """The summed loss of every head (as :func:`head_losses`), with each weight's and bias's
        gradient written into its ``.grad`` (allocated once, overwritten each step).

        A head's mean cross entropy over a batch of B has d loss / d logits = (softmax - one_hot) / B;
        the weight's gradient is that (H, K, B) times the features (B, D), one matmul per group.
        With autograd's backward of the same product (and a new weight-sized gradient every step),
        the 78-head ViT-B sweep added 2.1 s to a 4.7 s step on 2 CPU cores; this adds 0.46 s
        (benchmarks/speed/probes.py, batch 8).
        """
        batch = labels.shape[0]
        total = torch.zeros((), device=labels.device)
        for (source, blocks, members), weight, bias in zip(self.groups, self.weights, self.biases):
            features = pooled(tokens, source, blocks, self.num_prefix)
            log_probs = torch.log_softmax(torch.matmul(features, weight.transpose(1, 2)) + bias[:, None], dim=-1)
            target = labels.view(1, -1, 1).expand(len(members), -1, 1)
            total += log_probs.gather(-1, target).mean(dim=1).sum().neg()
            scores = log_probs.exp_()  # softmax, (H, B, K)
            scores.scatter_add_(-1, target, scores.new_full(target.shape, -1.0)).div_(batch)
            if weight.grad is None:
                weight.grad, bias.grad = torch.empty_like(weight), torch.empty_like(bias)
            torch.matmul(scores.transpose(1, 2), features, out=weight.grad)
            torch.sum(scores, dim=1, out=bias.grad)
        return total

    def extract(self, index: int) -> LinearSweep:
        """A one-head sweep holding a copy of head ``index`` (its point and current weights)."""
        point = self.points[index]
        group, row = next((g, members.index(index)) for g, (_, _, members) in enumerate(self.groups)
                          if index in members)
        single = LinearSweep([point], 1, 1, self.num_prefix)
        single.weights[0] = nn.Parameter(self.weights[group][row:row + 1].detach().clone())
        single.biases[0] = nn.Parameter(self.biases[group][row:row + 1].detach().clone())
        return single

    def make_optimizer(self, batch_size: int, world: int, momentum: float) -> StackedSGD:
        """Momentum SGD with each head's scaled lr."""
        lrs = [torch.tensor([scaled_lr(self.points[i].lr, batch_size, world) for i in members])
               for _, _, members in self.groups]
        return StackedSGD(list(zip(self.weights, self.biases, lrs)), momentum)


class StackedSGD:
    """``torch.optim.SGD(momentum=m, dampening=0, weight_decay=0)`` with one lr per stacked head.

    ``step(factor)`` applies ``lr_h x factor`` to head h of every (weight, bias, lrs) triple. The
    momentum update ``m x buffer + grad`` is one pass over the buffer (SGD makes two, so the last
    bit can differ).
    """

    def __init__(self, groups: list[tuple[nn.Parameter, nn.Parameter, torch.Tensor]], momentum: float) -> None:
        self.groups = groups
        self.momentum = momentum
        self.buffers: dict[int, torch.Tensor] = {}

    @torch.no_grad()
    def step(self, factor: float) -> None:
        """One update at ``factor`` x each head's lr."""
        for weight, bias, lrs in self.groups:
            for param in (weight, bias):
                if param.grad is None:
                    continue
                buffer = self.buffers.get(id(param))
                if buffer is None:
                    buffer = self.buffers[id(param)] = param.grad.clone()
                else:
                    torch.add(param.grad, buffer, alpha=self.momentum, out=buffer)
                step = lrs.to(param.device, param.dtype).view(-1, *([1] * (param.ndim - 1))) * factor
                param.addcmul_(buffer, step, value=-1.0)  # in place: no weight-sized temporary

    def state_dict(self) -> dict:
        """Momentum buffers by group position (for tests and inspection)."""
        return {index: self.buffers.get(id(param)) for index, param in
                enumerate(p for w, b, _ in self.groups for p in (w, b))}


class AttentionPoolHead(nn.Module):
    """One learned query cross-attending to the patch tokens, then a linear classifier (CAPI)."""

    def __init__(self, embed_dim: int, num_classes: int) -> None:
        super().__init__()
        self.num_heads = max(1, embed_dim // ATTENTIVE_HEAD_CHANNELS)
        if embed_dim % self.num_heads:
            raise ValueError(f"attentive probe: width {embed_dim} does not split into {self.num_heads} heads")
        self.query = nn.Parameter(torch.empty(embed_dim))
        self.kv = nn.Linear(embed_dim, 2 * embed_dim)
        self.linear = nn.Linear(embed_dim, num_classes)
        nn.init.trunc_normal_(self.query, std=ATTENTIVE_INIT_STD)
        for layer in (self.kv, self.linear):
            nn.init.trunc_normal_(layer.weight, std=ATTENTIVE_INIT_STD)
            nn.init.zeros_(layer.bias)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Patch tokens (B, N, C) -> logits (B, K)."""
        batch, length, dim = tokens.shape
        head_dim = dim // self.num_heads
        query = self.query.view(1, self.num_heads, 1, head_dim).expand(batch, -1, -1, -1)
        key, value = self.kv(tokens).view(batch, length, 2, self.num_heads, head_dim).permute(2, 0, 3, 1, 4)
        pooled_tokens = F.scaled_dot_product_attention(query, key, value)  # (B, heads, 1, head_dim)
        return self.linear(pooled_tokens.reshape(batch, dim))


class AttentiveGrid(nn.Module):
    """One :class:`AttentionPoolHead` per (lr, weight decay) point, each seeded with ``seed``."""

    def __init__(self, points: list[HeadPoint], embed_dim: int, num_classes: int, num_prefix: int,
                 seed: int = 0) -> None:
        super().__init__()
        if not points:
            raise ValueError("probe.attentive: empty grid; expected at least one head")
        self.points = list(points)
        self.num_prefix = num_prefix
        heads = []
        for _ in self.points:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                heads.append(AttentionPoolHead(embed_dim, num_classes))
        self.heads = nn.ModuleList(heads)

    max_blocks = 1

    def logits(self, tokens: list[torch.Tensor]) -> torch.Tensor:
        """Frozen tokens -> logits (G, B, K) in grid order."""
        patches = patch_tokens(tokens, self.num_prefix)
        return torch.stack([head(patches) for head in self.heads])

    def gradients(self, tokens: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        """The summed loss of every head, its gradients (autograd) in each parameter's ``.grad``."""
        self.zero_grad(set_to_none=True)
        loss = head_losses(self.logits(tokens), labels)
        loss.backward()
        return loss.detach()

    def extract(self, index: int) -> AttentiveGrid:
        """A one-head grid holding a copy of head ``index``."""
        head = self.heads[index]
        single = AttentiveGrid([self.points[index]], head.linear.in_features, head.linear.out_features,
                               self.num_prefix)
        single.heads[0].load_state_dict(head.state_dict())
        return single.to(head.query.device)

    def make_optimizer(self, batch_size: int, world: int, betas: tuple[float, float]) -> torch.optim.AdamW:
        """AdamW with two groups per head (weights with its decay, biases without), scaled lrs."""
        groups = []
        for point, head in zip(self.points, self.heads):
            lr = scaled_lr(point.lr, batch_size, world)
            named = list(head.named_parameters())
            groups.append({"params": [p for n, p in named if not n.endswith("bias")], "base_lr": lr, "lr": lr,
                           "weight_decay": point.weight_decay})
            groups.append({"params": [p for n, p in named if n.endswith("bias")], "base_lr": lr, "lr": lr,
                           "weight_decay": 0.0})
        return torch.optim.AdamW(groups, betas=betas)


def head_losses(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum over heads of each head's mean cross entropy; logits (G, B, K)."""
    heads, batch, classes = logits.shape
    losses = F.cross_entropy(logits.reshape(heads * batch, classes), labels.repeat(heads), reduction="none")
    return losses.view(heads, batch).mean(dim=1).sum()
