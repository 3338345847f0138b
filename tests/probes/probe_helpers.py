"""Data and builders shared by the probe tests: a tiny labelled image set of tensors."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from mae_transfer.probes import ProbeData

NUM_CLASSES = 4
IMAGE_SIZE = 32


class PatternImages(Dataset):
    """Images whose class is a colour pattern under noise; ``flip`` makes a random horizontal flip.

    Items are ``(image (3, 32, 32), label)``. Every read is appended to ``reads`` and, with a
    ``log``, to it as ``(name, index)`` (the tests that check which images a probe reads, when).
    """

    def __init__(self, per_class: int, seed: int, flip: bool = False, log: list | None = None, name: str = "") -> None:
        generator = torch.Generator().manual_seed(seed)
        self.labels = [c for c in range(NUM_CLASSES) for _ in range(per_class)]
        base = torch.randn(NUM_CLASSES, 3, 1, 1, generator=torch.Generator().manual_seed(123))
        noise = torch.randn(len(self.labels), 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator)
        ramp = torch.linspace(-1, 1, IMAGE_SIZE).view(1, 1, IMAGE_SIZE)
        self.images = torch.stack([base[c] * (1 + ramp * (c % 2)) for c in self.labels]) + 0.8 * noise
        self.flip = flip
        self.log = log
        self.name = name
        self.reads: list[int] = []

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        self.reads.append(index)
        if self.log is not None:
            self.log.append((self.name, index))
        image = self.images[index]
        if self.flip and torch.rand(1).item() < 0.5:
            image = image.flip(-1)
        return image, self.labels[index]


def pattern_data(per_class: int = 20, val_per_class: int = 8, log: list | None = None,
                 cache_key: dict | None = None) -> ProbeData:
    """Train (flip-augmented and plain views of the same images) and val pattern sets."""
    train = PatternImages(per_class, seed=1, flip=True, log=log, name="train")
    plain = PatternImages(per_class, seed=1, log=log, name="train_plain")
    val = PatternImages(val_per_class, seed=2, log=log, name="val")
    return ProbeData(train=train, train_plain=plain, val=val, train_labels=train.labels,
                     train_ids=[f"train/{i:04d}.png" for i in range(len(train))], num_classes=NUM_CLASSES,
                     cache_key=cache_key)


def cache_key(weights: str = "w0", transform: str = "resize32", backbone: str = "vit_tiny_patch16/d4") -> dict:
    """A cache key base for the pattern sets."""
    return {"weights": weights, "backbone": backbone, "resolution": IMAGE_SIZE, "transform": transform,
            "datasets": {"train": "patterns/seed1", "val": "patterns/seed2"}}
