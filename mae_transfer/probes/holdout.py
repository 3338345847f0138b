"""The fixed-seed hold-out of train that every grid point is scored on, and the gate that keeps
val closed until the selection is final.

CAPI (``eval_classification.py``) holds out a seeded random 10% of train and picks every
hyper-parameter on it; only the chosen head ever sees the test set. Here the hold-out is drawn
per class (the same share of each class, at least one image of every class with two or more),
so that a low-label set (10 images per class) still scores every class; its image ids are saved
and digested in the result, so a reader can check two runs held out the same images.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from mae_transfer.probes.settings import HoldoutSettings, ProbeConfigError


@dataclass(frozen=True)
class HoldoutSplit:
    """Train split into what the heads fit on and the hold-out they are scored on.

    Attributes:
        fit: train indices the heads train on (sorted).
        holdout: train indices held out (sorted, disjoint from ``fit``).
        holdout_ids: the held-out images' ids (their paths), in ``holdout`` order.
        settings: fraction and seed.
    """

    fit: tuple[int, ...]
    holdout: tuple[int, ...]
    holdout_ids: tuple[str, ...]
    settings: HoldoutSettings

    @property
    def digest(self) -> str:
        """sha256 of the sorted hold-out ids, one per line."""
        return hashlib.sha256("\n".join(sorted(self.holdout_ids)).encode()).hexdigest()

    def summary(self) -> dict:
        """What the result records: seed, fraction, counts, digest."""
        return {"seed": self.settings.seed, "fraction": self.settings.fraction, "fit_images": len(self.fit),
                "holdout_images": len(self.holdout), "ids_sha256": self.digest}

    def to_json(self) -> dict:
        """The summary plus the ids themselves (the ``holdout.json`` a run saves)."""
        return {**self.summary(), "ids": list(self.holdout_ids)}


def split_holdout(labels: Sequence[int], ids: Sequence[str], settings: HoldoutSettings) -> HoldoutSplit:
    """Hold out ``round(fraction x n_c)`` images of each class c (at least 1 where n_c >= 2, never all).

    The draw is a seeded permutation per class, classes in increasing order, so the same labels,
    ids and seed always give the same hold-out.

    Raises:
        ProbeConfigError: ``labels`` and ``ids`` differ in length, ids repeat, or nothing is held out.
    """
    if len(labels) != len(ids):
        raise ProbeConfigError(f"probe.holdout: {len(labels)} labels but {len(ids)} image ids")
    if len(set(ids)) != len(ids):
        raise ProbeConfigError("probe.holdout: image ids repeat; each training image needs its own id")
    by_class: dict[int, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        by_class[int(label)].append(index)
    rng = np.random.default_rng(settings.seed)
    held: list[int] = []
    for label in sorted(by_class):
        members = by_class[label]
        if len(members) < 2:
            continue
        count = min(len(members) - 1, max(1, round(settings.fraction * len(members))))
        held.extend(members[i] for i in rng.permutation(len(members))[:count])
    if not held:
        raise ProbeConfigError(f"probe.holdout: nothing to hold out from {len(labels)} training images "
                               f"(every class has fewer than 2)")
    holdout = tuple(sorted(held))
    held_set = set(holdout)
    fit = tuple(index for index in range(len(labels)) if index not in held_set)
    return HoldoutSplit(fit=fit, holdout=holdout, holdout_ids=tuple(ids[i] for i in holdout), settings=settings)


class ValReadBeforeSelection(RuntimeError):
    """Something asked for a val image while the hyper-parameters were still being chosen."""


class ValGate:
    """Closed until :meth:`open` is called with the final selection; every val read checks it."""

    def __init__(self) -> None:
        self.selection: dict | None = None

    def open(self, selection: dict) -> None:
        """The selection is final: val may be read from now on."""
        self.selection = dict(selection)

    def check(self, what: str) -> None:
        """Raise unless the gate is open (``what``: the read that was attempted)."""
        if self.selection is None:
            raise ValReadBeforeSelection(f"{what}: val is read only after the hold-out selection is final")


class GatedDataset:
    """A dataset whose items (val images) can be read only through an open :class:`ValGate`."""

    def __init__(self, dataset, gate: ValGate, name: str = "val") -> None:
        self.dataset = dataset
        self.gate = gate
        self.name = name

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index):
        self.gate.check(f"{self.name}[{index}]")
        return self.dataset[index]
