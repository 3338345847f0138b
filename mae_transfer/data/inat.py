"""iNaturalist 2017 / 2018 / 2019 in the official layout: tiny synthetic sets and a validator.

Layout (``root`` = the directory holding the JSON files)::

    train{year}.json, val{year}.json       COCO-like: images, annotations, categories
    train_val_images/<super>/<name>/*.jpg  (2017)
    train_val2018/<super>/<id>/*.jpg       (2018)
    train_val2019/<super>/<id>/*.jpg       (2019)

``file_name`` in the JSON is relative to ``root``. Class indices follow
:func:`mae_transfer.data.annotations.read_inat_json` (position of the category id in
the sorted id list).
"""

from __future__ import annotations

import colorsys
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from mae_transfer.data.annotations import ClassificationAnnotations, read_inat_json
from mae_transfer.data.report import CheckReport, read_image

logger = logging.getLogger(__name__)

# year -> (image directory, official number of classes)
INAT_YEARS: dict[int, tuple[str, int]] = {
    2017: ("train_val_images", 5089),
    2018: ("train_val2018", 8142),
    2019: ("train_val2019", 1010),
}
SUPERCATEGORIES = ("Plantae", "Insecta", "Aves", "Fungi", "Mammalia")


def year_of(kind: str) -> int:
    """``'inat2018'`` -> 2018; raises ValueError for another kind."""
    year = int(kind[4:]) if kind.startswith("inat") and kind[4:].isdigit() else None
    if year not in INAT_YEARS:
        raise ValueError(f"unknown iNaturalist kind {kind!r}; expected one of inat2017, inat2018, inat2019")
    return year


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


def write_inat(
    root: str | Path,
    year: int,
    splits: Mapping[str, Sequence[tuple[Image.Image, int]]],
    class_names: Sequence[str],
) -> Path:
    """Write labelled images as an iNaturalist ``year`` dataset (JSON files + image tree).

    Args:
        root: dataset root to create.
        year: 2017, 2018 or 2019 (selects file and directory names).
        splits: ``{"train": [(image, label), ...], "val": [...]}``; labels index ``class_names``.
        class_names: category names; category ``i`` gets id ``i``.

    Returns:
        the dataset root.
    """
    root = Path(root)
    image_dir = INAT_YEARS[year][0]
    categories = [
        {"id": index, "name": name, "supercategory": SUPERCATEGORIES[index % len(SUPERCATEGORIES)]}
        for index, name in enumerate(class_names)
    ]
    next_id = 0
    for split, items in splits.items():
        images, annotations = [], []
        for image, label in items:
            category = categories[label]
            folder = category["name"] if year == 2017 else str(category["id"])
            file_name = f"{image_dir}/{category['supercategory']}/{folder}/{split}_{next_id:06d}.jpg"
            (root / file_name).parent.mkdir(parents=True, exist_ok=True)
            image.convert("RGB").save(root / file_name, quality=95)
            images.append({"id": next_id, "file_name": file_name, "width": image.width, "height": image.height})
            annotations.append({"id": next_id, "image_id": next_id, "category_id": category["id"]})
            next_id += 1
        payload = {"info": {"year": year}, "images": images, "annotations": annotations, "categories": categories}
        (root / f"{split}{year}.json").write_text(json.dumps(payload), encoding="utf-8")
    return root


def synthetic_splits(
    rng: np.random.Generator,
    num_classes: int,
    train_per_class: int,
    val_per_class: int,
    image_size: int | tuple[int, int],
    num_train: int | None = None,
    num_val: int | None = None,
) -> dict[str, list[tuple[Image.Image, int]]]:
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
    """Write a tiny synthetic iNaturalist dataset of ``kind`` under ``out``; returns the root.

    ``num_classes`` categories are listed in both JSON files; each split holds
    ``*_per_class`` images of every class, or ``num_train`` / ``num_val`` images in total
    (labels spread over the label space). ``image_size``: square side or (width, height).
    """
    year = year_of(kind)
    rng = np.random.default_rng(seed)
    width = len(str(num_classes - 1))
    names = [f"species_{index:0{max(width, 3)}d}" for index in range(num_classes)]
    splits = synthetic_splits(rng, num_classes, train_per_class, val_per_class, image_size, num_train, num_val)
    root = write_inat(out, year, splits, names)
    logger.info("wrote synthetic %s (%d classes) to %s", kind, num_classes, root)
    return root


def check(kind: str, root: Path, *, quick: bool = False) -> CheckReport:
    """Validate an iNaturalist root: JSON structure, labels, categories and image files.

    Every image is decoded in full (``quick``: headers only); a split without samples is a defect.
    """
    year = year_of(kind)
    root = Path(root)
    report = CheckReport(kind=kind, root=str(root))
    class_lists = {}
    for split in ("train", "val"):
        ann_file = root / f"{split}{year}.json"
        known = len(report.problems)
        try:
            annotations = read_inat_json(ann_file, on_error=report.add)
        except UnicodeDecodeError as error:
            report.add(str(ann_file), f"byte {error.start}", "not UTF-8 text; iNaturalist annotation files are UTF-8 JSON")
            annotations = ClassificationAnnotations([], ())
        class_lists[split] = annotations.classes
        report.counts[f"{split} images"] = len(annotations.samples)
        if not annotations.samples and len(report.problems) == known:
            report.add(str(ann_file), "images", f"no labelled images in the {split} split; expected at least one")
        for sample in annotations.samples:
            image_path = root / sample.path
            if not image_path.is_file():
                report.add(sample.file, sample.where, f"image file {sample.path!r} not found under {root}")
                continue
            _, problem = read_image(image_path, quick=quick)
            if problem:
                report.add(str(image_path), sample.source, problem)
    classes = class_lists["train"]
    report.counts["classes"] = len(classes)
    if classes and class_lists["val"] and classes != class_lists["val"]:
        report.add(str(root / f"val{year}.json"), "categories",
                   f"categories differ from train{year}.json; expected the same category list in both")
    official = INAT_YEARS[year][1]
    if classes and len(classes) != official:
        report.notes.append(f"{len(classes)} categories; the official iNat{year} set has {official}")
    return report
