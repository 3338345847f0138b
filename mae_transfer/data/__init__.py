"""Dataset layouts: synthetic generators and validators for every benchmark dataset.

Each dataset module exposes two functions with the same signatures:

- ``make(kind, out, *, seed=0, **options) -> Path``: write a small synthetic dataset in the
  official layout under ``out`` and return the dataset root;
- ``check(kind, root, *, quick=False, **options) -> CheckReport``: validate a dataset root in the
  official layout, decoding every image (``quick``: headers only).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from mae_transfer.data.report import CheckReport, Problem

# kind -> module implementing make/check for it
DATASET_MODULES: dict[str, str] = {
    "coco": "mae_transfer.data.coco",
    "ade20k": "mae_transfer.data.ade20k",
    "inat2017": "mae_transfer.data.inat",
    "inat2018": "mae_transfer.data.inat",
    "inat2019": "mae_transfer.data.inat",
    "places205": "mae_transfer.data.places",
    "places365": "mae_transfer.data.places",
    "imagenet": "mae_transfer.data.imagenet",
    "digits": "mae_transfer.data.digits",
    "photos": "mae_transfer.data.photos",
}


def dataset_module(kind: str) -> ModuleType:
    """The module that makes and checks datasets of ``kind``."""
    if kind not in DATASET_MODULES:
        raise ValueError(f"unknown dataset kind {kind!r}; expected one of {sorted(DATASET_MODULES)}")
    return importlib.import_module(DATASET_MODULES[kind])


def make_dataset(kind: str, out: str | Path, *, seed: int = 0, **options) -> Path:
    """Write a tiny synthetic dataset of ``kind`` in its official layout; returns its root."""
    return dataset_module(kind).make(kind, Path(out), seed=seed, **options)


def check_dataset(kind: str, root: str | Path, *, quick: bool = False, **options) -> CheckReport:
    """Validate a dataset root of ``kind``; the report lists every defect found.

    Every image is decoded in full; ``quick`` reads image headers only (faster, but a truncated
    image then passes). ``options`` go to the kind's ``check`` (``imagenet``: ``num_classes``).
    """
    return dataset_module(kind).check(kind, Path(root), quick=quick, **options)


__all__ = ["CheckReport", "Problem", "DATASET_MODULES", "check_dataset", "dataset_module", "make_dataset"]
