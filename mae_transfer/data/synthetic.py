"""Synthetic labelled images and the ``make()`` shared by the classification layouts.

iNaturalist and Places differ only in their file layout: both generate the same learnable
images (:func:`synthetic_class_image`), split them the same way (:func:`synthetic_splits`) and
expose the same ``make()`` (:func:`labelled_dataset_maker`); each passes its own writer.
"""

from __future__ import annotations

import colorsys
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)

Splits = dict[str, list[tuple[Image.Image, int]]]
# (kind, dataset root, labelled splits, class names) -> the dataset root
LayoutWriter = Callable[[str, Path, Splits, Sequence[str]], Path]


def synthetic_class_image(rng: np.random.Generator, label: int, num_classes: int,
                          size: int | tuple[int, int]) -> Image.Image:
    """A small RGB image whose colour and stripe direction depend on ``label`` (learnable).

    ``size`` is the side of a square image, or (width, height).
    """
    width, height = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    hue = label / max(num_classes, 1)
    colour = np.array(colorsys.hsv_to_rgb(hue, 0.8, 0.9)) * 255.0
    rows, columns = np.arange(height, dtype=np.float32), np.arange(width, dtype=np.float32)
    stripes = np.sin((rows[:, None] if label % 2 else columns[None, :]) * (0.3 + 0.1 * (label % 3)))
    pixels = colour[None, None, :] * (0.6 + 0.4 * stripes[..., None])
    pixels = pixels + rng.normal(0.0, 12.0, size=(height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB")


def synthetic_splits(
    rng: np.random.Generator,
    num_classes: int,
    train_per_class: int,
    val_per_class: int,
    image_size: int | tuple[int, int],
    num_train: int | None = None,
    num_val: int | None = None,
) -> Splits:
    """Labelled synthetic images: ``*_per_class`` of every class, or ``num_train``/``num_val``
    images in total with labels spread evenly over the whole label space (first and last class
    included), for label spaces larger than the image count (iNat 2018: 8,142 classes)."""
    def labels(per_class: int, total: int | None) -> list[int]:
        if total is None:
            return [label for label in range(num_classes) for _ in range(per_class)]
        return [round(i * (num_classes - 1) / max(total - 1, 1)) for i in range(total)]

    return {
        split: [(synthetic_class_image(rng, label, num_classes, image_size), label) for label in labels(per_class, total)]
        for split, per_class, total in (("train", train_per_class, num_train), ("val", val_per_class, num_val))
    }


def labelled_dataset_maker(
    dataset: str,
    check_kind: Callable[[str], object],
    class_names: Callable[[int], list[str]],
    write: LayoutWriter,
) -> Callable[..., Path]:
    """The ``make(kind, out, ...)`` of a classification layout (see :mod:`mae_transfer.data`).

    Args:
        dataset: the dataset's name, for the log line and the docstring.
        check_kind: raises ValueError for a ``kind`` the layout does not know.
        class_names: number of classes -> their names (label ``i`` is name ``i``).
        write: writes the splits in the layout of ``kind`` and returns the root.
    """

    def make(
        kind: str,
        out: Path,
        *,
        seed: int = 0,
        num_classes: int = 4,
        train_per_class: int = 16,
        val_per_class: int = 8,
        image_size: int | tuple[int, int] = 48,
        num_train: int | None = None,
        num_val: int | None = None,
    ) -> Path:
        check_kind(kind)
        rng = np.random.default_rng(seed)
        splits = synthetic_splits(rng, num_classes, train_per_class, val_per_class, image_size, num_train, num_val)
        root = write(kind, Path(out), splits, class_names(num_classes))
        logger.info("wrote synthetic %s (%d classes) to %s", kind, num_classes, root)
        return root

    make.__doc__ = (
        f"Write a tiny synthetic {dataset} dataset of ``kind`` under ``out``; returns the root.\n\n"
        "    Each split holds ``*_per_class`` images of every one of ``num_classes`` classes, or\n"
        "    ``num_train`` / ``num_val`` images in total (labels spread over the label space).\n"
        "    ``image_size``: square side or (width, height).\n"
    )
    return make
