"""The loops every probe shares: feature extraction, head training and scoring, on one or many processes.

Distributed runs use ``torch.distributed`` when it is initialised (each process a rank):

- extraction and scoring: rank r takes the samples ``r, r + world, ...``; counts are summed over
  ranks (``all_reduce``);
- training: every step draws one global batch of ``batch_size x world`` images from a seeded
  permutation of the epoch; rank r trains on its ``batch_size`` slice and the head gradients are
  averaged over ranks before the update (what DDP does), so a step equals one process training on
  the whole global batch.

Every training image is augmented under its own random state, seeded by (seed, epoch, index), so
the augmentation a head sees does not depend on the number of processes or data workers.
"""

from __future__ import annotations

import logging
import random
from typing import Any, Callable, Sequence

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset, default_collate

from mae_transfer.probes.features import FrozenBackbone, pooled
from mae_transfer.probes.heads import StackedSGD
from mae_transfer.probes.settings import ProbeConfigError

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


def dist_info() -> tuple[int, int]:
    """(rank, world size); (0, 1) without an initialised process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over ranks in place (no-op on one process); NCCL reduces a copy on the GPU."""
    if dist_info()[1] > 1:
        on_gpu = dist.get_backend() == "nccl"
        reduced = tensor.to(torch.device("cuda", torch.cuda.current_device())) if on_gpu else tensor
        dist.all_reduce(reduced, op=dist.ReduceOp.SUM)
        if reduced is not tensor:
            tensor.copy_(reduced.to(tensor.device))
    return tensor


def barrier() -> None:
    """Wait for every rank (no-op on one process)."""
    if dist_info()[1] > 1:
        dist.barrier()


def broadcast_object(value: Any) -> Any:
    """Rank 0's ``value`` on every rank."""
    if dist_info()[1] == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def sync_gradients(parameters: Sequence[nn.Parameter]) -> None:
    """Average the gradients of ``parameters`` over ranks (one flat all-reduce)."""
    world = dist_info()[1]
    grads = [p.grad for p in parameters if p.grad is not None]
    if world == 1 or not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= world
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset:offset + grad.numel()].view_as(grad))
        offset += grad.numel()


def unpack(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """A collated batch -> (images, labels): mmengine's packed dict or an (images, labels) pair."""
    if isinstance(batch, dict):
        images, labels = batch["inputs"], batch["data_samples"]
    else:
        images, labels = batch
    if isinstance(images, (list, tuple)):
        images = torch.stack(list(images))
    return images, torch.as_tensor(labels).long()


class SeededItems(Dataset):
    """Items fetched by ``(epoch, index)``, each under a random state seeded by (seed, epoch, index)."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        item_seed = (self.seed * 1_000_003 + epoch * 10_000_019 + index) % (2 ** 63)
        state = random.getstate()
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(item_seed)
                random.seed(item_seed)
                return self.dataset[index]
        finally:
            random.setstate(state)


class GlobalBatchSampler:
    """This rank's ``(epoch, index)`` lists, one per step; each step is one global batch of a seeded permutation."""

    def __init__(self, indices: Sequence[int], batch_size: int, seed: int, epoch: int) -> None:
        self.indices = list(indices)
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = epoch
        self.rank, self.world = dist_info()

    def __len__(self) -> int:
        return len(self.indices) // (self.batch_size * self.world)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 7919 + self.epoch)
        order = torch.randperm(len(self.indices), generator=generator).tolist()
        size = self.batch_size * self.world
        for step in range(len(self)):
            start = step * size + self.rank * self.batch_size
            yield [(self.epoch, self.indices[i]) for i in order[start:start + self.batch_size]]


def _loader(dataset: Dataset, indices: Sequence[int], batch_size: int, num_workers: int,
            collate: Callable | None) -> DataLoader:
    rank, world = dist_info()
    return DataLoader(Subset(dataset, list(indices)[rank::world]), batch_size=batch_size, shuffle=False,
                      num_workers=num_workers, collate_fn=collate or default_collate)


def _apply_step(optimizer: Any, factor: float) -> None:
    if isinstance(optimizer, StackedSGD):
        optimizer.step(factor)
        return
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor
    optimizer.step()


def fit_heads(grid: nn.Module, frozen: FrozenBackbone, dataset: Dataset, indices: Sequence[int], *, epochs: int,
              batch_size: int, optimizer: Any, schedule: Callable[[int, int], float], device: torch.device,
              seed: int, num_workers: int = 0, collate: Callable | None = None, progress: Progress | None = None,
              what: str = "heads") -> int:
    """Train every head of ``grid`` on ``indices`` of ``dataset`` (augmented); returns the iterations run.

    Raises:
        ProbeConfigError: one global batch is larger than the training images.
    """
    world = dist_info()[1]
    steps = len(indices) // (batch_size * world)
    if steps == 0:
        raise ProbeConfigError(f"probe.batch_size: {batch_size} per process x {world} process(es) exceeds the "
                               f"{len(indices)} training images of {what}; lower it")
    total = epochs * steps
    parameters = [p for p in grid.parameters() if p.requires_grad]
    items = SeededItems(dataset, seed)
    iteration = 0
    grid.train()
    for epoch in range(epochs):
        loader = DataLoader(items, batch_sampler=GlobalBatchSampler(indices, batch_size, seed, epoch),
                            num_workers=num_workers, collate_fn=collate or default_collate)
        for batch in loader:
            images, labels = unpack(batch)
            tokens = frozen(images.to(device, non_blocking=True))
            loss = grid.gradients(tokens, labels.to(device))
            sync_gradients(parameters)
            _apply_step(optimizer, schedule(iteration, total))
            iteration += 1
            if progress is not None:
                progress(what, iteration, total)
        logger.info("%s: epoch %d/%d, loss %.4f", what, epoch + 1, epochs, float(loss.detach()) / len(grid.points))
    grid.eval()
    return iteration


@torch.no_grad()
def score_heads(grid: nn.Module, frozen: FrozenBackbone, dataset: Dataset, indices: Sequence[int], *,
                batch_size: int, device: torch.device, num_workers: int = 0,
                collate: Callable | None = None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Top-1 and top-5 hit counts per head (G,) on ``indices`` of ``dataset``, summed over ranks, and the count."""
    grid.eval()
    heads = len(grid.points)
    hits = torch.zeros(2, heads, dtype=torch.float64)
    seen = torch.zeros(1, dtype=torch.float64)
    for batch in _loader(dataset, indices, batch_size, num_workers, collate):
        images, labels = unpack(batch)
        logits = grid.logits(frozen(images.to(device)))  # (G, B, K)
        labels = labels.to(device).view(1, -1, 1)
        ranked = logits.topk(min(5, logits.shape[-1]), dim=-1).indices
        hits[0] += (ranked[..., :1] == labels).any(dim=-1).sum(dim=1).double().cpu()
        hits[1] += (ranked == labels).any(dim=-1).sum(dim=1).double().cpu()
        seen += labels.shape[1]
    all_reduce_sum(hits)
    all_reduce_sum(seen)
    return hits[0], hits[1], int(seen.item())


@torch.no_grad()
def extract_shard(frozen: FrozenBackbone, dataset: Dataset, source: str, blocks: int, dim: int, *,
                  batch_size: int, device: torch.device, num_workers: int = 0,
                  collate: Callable | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """This rank's share of ``dataset`` (samples rank, rank + world, ...): (indices, features (n, dim), labels)."""
    rank, world = dist_info()
    indices = list(range(len(dataset)))[rank::world]
    features, labels = [], []
    for batch in _loader(dataset, range(len(dataset)), batch_size, num_workers, collate):
        images, batch_labels = unpack(batch)
        features.append(pooled(frozen(images.to(device)), source, blocks, frozen.num_prefix).cpu())
        labels.append(batch_labels)
    return (torch.tensor(indices, dtype=torch.long),
            torch.cat(features) if features else torch.empty(0, dim),
            torch.cat(labels) if labels else torch.empty(0, dtype=torch.long))
