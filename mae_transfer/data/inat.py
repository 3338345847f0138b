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

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from PIL import Image

from mae_transfer.data.annotations import ClassificationAnnotations, read_inat_json
from mae_transfer.data.report import CheckReport, outside_base, read_image
from mae_transfer.data.synthetic import labelled_dataset_maker

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


def species_names(num_classes: int) -> list[str]:
    """``species_000``, ``species_001``, ... (zero-padded to the widest index, at least 3 digits)."""
    width = max(len(str(num_classes - 1)), 3)
    return [f"species_{index:0{width}d}" for index in range(num_classes)]


make = labelled_dataset_maker(
    "iNaturalist",
    check_kind=year_of,
    class_names=species_names,
    write=lambda kind, out, splits, names: write_inat(out, year_of(kind), splits, names),
)


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
            escape = outside_base(sample.path, root)
            if escape:
                report.add(sample.file, sample.where, escape)
                continue
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
