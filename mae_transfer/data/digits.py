"""scikit-learn's handwritten digits as a real, labelled ImageFolder set (the demo's probe set).

``sklearn.datasets.load_digits`` ships 1,797 real 8 x 8 grey-level scans of handwritten digits
(UCI "Optical Recognition of Handwritten Digits", 16 grey levels) inside the package: nothing is
downloaded. ``make("digits", out)`` upsamples them (bicubic) to ``image_size`` RGB PNGs in the
ImageFolder layout the classification datasets read::

    train/digit_0/train_00017.png ...   ``train_per_class`` images per class (the low-label setting)
    val/digit_0/val_00003.png ...       every other image (about 1,700)

The split is a seeded permutation per class. ``check`` validates the layout like ImageNet's
(``mae_transfer.data.imagenet.check`` with 10 classes).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image

from mae_transfer.data import imagenet
from mae_transfer.data.report import CheckReport

logger = logging.getLogger(__name__)

NUM_CLASSES = 10
CLASS_NAMES = tuple(f"digit_{digit}" for digit in range(NUM_CLASSES))


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 scans (N, 8, 8) with values 0..16 and their labels (N,)."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError as error:
        raise ImportError("the digits set ships inside scikit-learn: pip install scikit-learn "
                          "(the project's [dev] extra pins it)") from error
    digits = sklearn_digits()
    return digits.images, digits.target


def to_image(scan: np.ndarray, image_size: int) -> Image.Image:
    """One 8 x 8 scan (0..16) -> an ``image_size`` RGB image (bicubic upsampling)."""
    pixels = np.clip(scan * (255.0 / 16.0), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, mode="L").resize((image_size, image_size), Image.BICUBIC).convert("RGB")


def split_indices(labels: np.ndarray, train_per_class: int, seed: int,
                  val_per_class: int | None = None) -> tuple[list[int], list[int]]:
    """(train, val) scan indices: ``train_per_class`` of each class by a seeded permutation, then
    ``val_per_class`` of the rest for val (None: all of the rest)."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in range(NUM_CLASSES):
        members = np.flatnonzero(labels == label)
        if not 1 <= train_per_class < len(members):
            raise ValueError(f"train_per_class: expected 1..{len(members) - 1} (class {label} has {len(members)} "
                             f"images), got {train_per_class}")
        order = members[rng.permutation(len(members))]
        train.extend(int(i) for i in order[:train_per_class])
        rest = order[train_per_class:]
        val.extend(int(i) for i in (rest if val_per_class is None else rest[:val_per_class]))
    return sorted(train), sorted(val)


def make(kind: str, out: Path, *, seed: int = 0, train_per_class: int = 10, val_per_class: int | None = None,
         image_size: int = 64) -> Path:
    """Write the digits under ``out`` (``train_per_class`` training images per class; ``val_per_class``
    val images per class, None: all the others)."""
    if kind != "digits":
        raise ValueError(f"unknown digits kind {kind!r}; expected 'digits'")
    images, labels = load_digits()
    root = Path(out)
    for split, indices in zip(("train", "val"), split_indices(labels, train_per_class, seed, val_per_class)):
        for index in indices:
            folder = root / split / CLASS_NAMES[int(labels[index])]
            folder.mkdir(parents=True, exist_ok=True)
            to_image(images[index], image_size).save(folder / f"{split}_{index:05d}.png")
    logger.info("wrote the digits (%d train per class) to %s", train_per_class, root)
    return root


def check(kind: str, root: Path, *, quick: bool = False) -> CheckReport:
    """The ImageFolder checks with the digits' 10 classes."""
    if kind != "digits":
        raise ValueError(f"unknown digits kind {kind!r}; expected 'digits'")
    report = imagenet.check("imagenet", root, quick=quick, num_classes=NUM_CLASSES)
    report.kind = kind
    return report
