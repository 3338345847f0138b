"""ImageNet-1k in the ImageFolder layout the official MAE scripts read: tiny sets and a validator.

Layout (``root`` = the ``--data_path`` of the official scripts)::

    train/n01440764/n01440764_10026.JPEG     one folder per class (wnid), 1000 classes
    val/n01440764/ILSVRC2012_val_00000293.JPEG   the 50,000 val images, re-organised by class

The official val set is distributed flat; the MAE / DeiT scripts (``datasets.ImageFolder``) need
it sorted into the same class folders as ``train/``. Class folder names are WordNet ids
(wnids); class indices are their sorted order (:mod:`mae_transfer.classification.imagefolder`).
The 1000 real wnids come from timm's ImageNet metadata.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from mae_transfer.data.image_folders import IMG_EXTENSIONS
from mae_transfer.data.synthetic import synthetic_class_image
from mae_transfer.data.report import CheckReport, read_image

logger = logging.getLogger(__name__)

NUM_CLASSES = 1000
SPLITS = ("train", "val")


def imagenet_wnids() -> list[str]:
    """The 1000 ImageNet-1k wnids in sorted order (class index order), from timm's metadata."""
    from timm.data import ImageNetInfo

    wnids = sorted(ImageNetInfo("imagenet-1k").label_names())
    if len(wnids) != NUM_CLASSES:
        raise RuntimeError(f"timm's ImageNet-1k metadata lists {len(wnids)} synsets, expected {NUM_CLASSES}")
    return wnids


def make(
    kind: str,
    out: Path,
    *,
    seed: int = 0,
    num_classes: int = 4,
    train_per_class: int | None = None,
    val_per_class: int | None = None,
    image_size: int = 64,
) -> Path:
    """Write a tiny synthetic ImageNet under ``out``; returns the root.

    Args:
        kind: ``imagenet``.
        out: dataset root to create.
        seed: image noise seed.
        num_classes: class folders, named by the first ``num_classes`` real wnids; 1000 gives the
            full ImageNet-1k label space.
        train_per_class: training images per class (default 16, or 2 above 16 classes).
        val_per_class: validation images per class (default 8, or 1 above 16 classes).
        image_size: image side in pixels.
    """
    if kind != "imagenet":
        raise ValueError(f"unknown ImageNet kind {kind!r}; expected 'imagenet'")
    if not 1 <= num_classes <= NUM_CLASSES:
        raise ValueError(f"num_classes: expected 1..{NUM_CLASSES}, got {num_classes}")
    train_per_class = train_per_class if train_per_class is not None else (16 if num_classes <= 16 else 2)
    val_per_class = val_per_class if val_per_class is not None else (8 if num_classes <= 16 else 1)
    rng = np.random.default_rng(seed)
    wnids = imagenet_wnids()[:num_classes]
    root = Path(out)
    counter = 0
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for label, wnid in enumerate(wnids):
            folder = root / split / wnid
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                counter += 1
                name = f"{wnid}_{index}.JPEG" if split == "train" else f"ILSVRC2012_val_{counter:08d}.JPEG"
                synthetic_class_image(rng, label, num_classes, image_size).save(folder / name, format="JPEG",
                                                                                quality=95)
    logger.info("wrote synthetic ImageNet (%d classes) to %s", num_classes, root)
    return root


def check(kind: str, root: Path, *, quick: bool = False, num_classes: int | None = NUM_CLASSES,
          workers: int | None = None) -> CheckReport:
    """Validate an ImageNet root in the ImageFolder layout; every image is decoded fully.

    Reported, each with its path: a missing ``train/`` or ``val/``; images directly in a split
    folder (a flat, not re-organised val set); a class folder present in one split but not the
    other; with ``num_classes`` set (1000, the real set), a count that differs, with every
    missing real wnid; empty class folders; images that do not decode.

    Args:
        kind: ``imagenet``.
        root: the dataset root.
        quick: read image headers only instead of decoding every image.
        num_classes: expected class count (None: any count, e.g. a generated subset).
        workers: decoding threads (default: up to 8).
    """
    if kind != "imagenet":
        raise ValueError(f"unknown ImageNet kind {kind!r}; expected 'imagenet'")
    root = Path(root)
    report = CheckReport(kind=kind, root=str(root))
    classes: dict[str, list[str]] = {}
    images: list[str] = []
    for split in SPLITS:
        folder = root / split
        if not folder.is_dir():
            report.add(folder, "", "split folder not found; expected one sub-folder per class")
            continue
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        classes[split] = [entry.name for entry in entries if entry.is_dir()]
        loose = [entry.name for entry in entries if entry.is_file() and entry.name.lower().endswith(IMG_EXTENSIONS)]
        if loose:
            report.add(folder, loose[0], f"{len(loose)} image(s) directly in {split}/, outside class folders "
                                         "(ImageFolder ignores them; re-organise a flat val set by class)")
        split_images = 0
        for name in classes[split]:
            files = [str(Path(directory) / file) for directory, _, names in os.walk(folder / name, followlinks=True)
                     for file in sorted(names) if file.lower().endswith(IMG_EXTENSIONS)]
            if not files:
                report.add(folder / name, "", "class folder without images (ImageFolder refuses empty classes)")
            images.extend(files)
            split_images += len(files)
        report.counts[f"{split} classes"] = len(classes[split])
        report.counts[f"{split} images"] = split_images
    if len(classes) == len(SPLITS):
        train, val = set(classes["train"]), set(classes["val"])
        for name in sorted(train - val):
            report.add(root / "val" / name, "", "class folder missing (present in train/)")
        for name in sorted(val - train):
            report.add(root / "train" / name, "", "class folder missing (present in val/)")
    _check_label_space(report, root, classes, num_classes)
    with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
        for path, (_, error) in zip(images, pool.map(lambda p: read_image(Path(p), quick=quick), images, chunksize=64)):
            if error is not None:
                report.add(path, "", error)
    return report


def _check_label_space(report: CheckReport, root: Path, classes: dict[str, list[str]], num_classes: int | None) -> None:
    if num_classes is None:
        return
    for split, names in classes.items():
        if len(names) == num_classes:
            continue
        if num_classes == NUM_CLASSES:
            for wnid in sorted(set(imagenet_wnids()) - set(names)):
                report.add(root / split / wnid, "", "class folder missing: ImageNet-1k has 1000 classes")
            unknown = sorted(set(names) - set(imagenet_wnids()))
            for name in unknown:
                report.add(root / split / name, "", "not an ImageNet-1k wnid")
        else:
            report.add(root / split, "", f"{len(names)} class folders, expected {num_classes}")
