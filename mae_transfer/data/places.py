"""Places365-Standard and Places205 in the official file-list layout: tiny sets and a validator.

Layouts (``root`` = the directory holding the lists)::

    places365: places365_train_standard.txt  "/a/airfield/00000001.jpg 0"  images in data_256/
               places365_val.txt             "Places365_val_00000001.jpg 165" images in val_256/
               categories_places365.txt      "/a/airfield 0"
    places205: train_places205.csv           "a/abbey/00000001.jpg 0"  images in images256/
               val_places205.csv             "a/abbey/00000002.jpg 0"  images in images256/

Places205's lists are space separated despite the ``.csv`` suffix, as distributed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from mae_transfer.data.annotations import read_places_categories, read_places_list
from mae_transfer.data.report import CheckReport, outside_base, read_image
from mae_transfer.data.synthetic import labelled_dataset_maker


@dataclass(frozen=True)
class PlacesLayout:
    """File and directory names of one Places release (relative to its root)."""

    train_list: str
    val_list: str
    train_images: str
    val_images: str
    num_classes: int
    categories: str | None


PLACES_LAYOUTS: dict[str, PlacesLayout] = {
    "places365": PlacesLayout(
        "places365_train_standard.txt", "places365_val.txt", "data_256", "val_256", 365, "categories_places365.txt"
    ),
    "places205": PlacesLayout("train_places205.csv", "val_places205.csv", "images256", "images256", 205, None),
}


def layout_of(kind: str) -> PlacesLayout:
    """The layout of ``'places365'`` or ``'places205'``."""
    if kind not in PLACES_LAYOUTS:
        raise ValueError(f"unknown Places kind {kind!r}; expected one of {sorted(PLACES_LAYOUTS)}")
    return PLACES_LAYOUTS[kind]


def write_places(
    root: str | Path,
    kind: str,
    splits: Mapping[str, Sequence[tuple[Image.Image, int]]],
    class_names: Sequence[str],
) -> Path:
    """Write labelled images as a Places dataset of ``kind`` (file lists + image tree).

    Args:
        root: dataset root to create.
        kind: ``places365`` or ``places205``.
        splits: ``{"train": [(image, label), ...], "val": [...]}``.
        class_names: scene names like ``a/airfield`` (label ``i`` is ``class_names[i]``).

    Returns:
        the dataset root.
    """
    layout = layout_of(kind)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    counter = 0
    for split, items in splits.items():
        list_name, image_dir = (
            (layout.train_list, layout.train_images) if split == "train" else (layout.val_list, layout.val_images)
        )
        lines = []
        for image, label in items:
            counter += 1
            if kind == "places365" and split != "train":
                relative = f"Places365_val_{counter:08d}.jpg"
            else:
                relative = f"{class_names[label]}/{counter:08d}.jpg"
            target = root / image_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            image.convert("RGB").save(target, quality=95)
            shown = "/" + relative if kind == "places365" and split == "train" else relative
            lines.append(f"{shown} {label}\n")
        (root / list_name).write_text("".join(lines), encoding="utf-8")
    if layout.categories:
        text = "".join(f"/{name} {index}\n" for index, name in enumerate(class_names))
        (root / layout.categories).write_text(text, encoding="utf-8")
    return root


def scene_names(num_classes: int) -> list[str]:
    """``s/scene_000``, ``s/scene_001``, ... (Places scene names carry a letter directory)."""
    return [f"s/scene_{index:03d}" for index in range(num_classes)]


make = labelled_dataset_maker(
    "Places",
    check_kind=layout_of,
    class_names=scene_names,
    write=lambda kind, out, splits, names: write_places(out, kind, splits, names),
)


def check(kind: str, root: Path, *, quick: bool = False) -> CheckReport:
    """Validate a Places root: list syntax, label range, category file and image files.

    Every image is decoded in full (``quick``: headers only); an empty file list is a defect.
    """
    layout = layout_of(kind)
    root = Path(root)
    report = CheckReport(kind=kind, root=str(root))
    num_classes = layout.num_classes
    if layout.categories:
        categories_file = root / layout.categories
        if categories_file.is_file():
            names = _read_text_safely(categories_file, report, lambda: read_places_categories(
                categories_file, on_error=report.add), ())
            if names:
                num_classes = len(names)
        else:
            report.notes.append(f"{layout.categories} not found; labels checked against {num_classes} classes")
    if num_classes != layout.num_classes:
        report.notes.append(f"{num_classes} categories; the official {kind} set has {layout.num_classes}")
    report.counts["classes"] = num_classes
    for split, list_name, image_dir in (
        ("train", layout.train_list, layout.train_images),
        ("val", layout.val_list, layout.val_images),
    ):
        list_file, known = root / list_name, len(report.problems)
        samples = _read_text_safely(list_file, report, lambda: read_places_list(
            list_file, num_classes, on_error=report.add), [])
        report.counts[f"{split} images"] = len(samples)
        if not samples and len(report.problems) == known:
            report.add(str(list_file), "", f"the {split} list has no samples; expected 'relative/path.jpg label' lines")
        for sample in samples:
            image_path = root / image_dir / sample.path
            escape = outside_base(sample.path, root / image_dir)
            if escape:
                report.add(sample.file, sample.where, escape)
                continue
            if not image_path.is_file():
                report.add(sample.file, sample.where, f"image file {sample.path!r} not found under {root / image_dir}")
                continue
            _, problem = read_image(image_path, quick=quick)
            if problem:
                report.add(str(image_path), sample.source, problem)
    return report


def _read_text_safely(path: Path, report: CheckReport, read, empty):
    """``read()``, or ``empty`` with a problem recorded when ``path`` is not UTF-8 text."""
    try:
        return read()
    except UnicodeDecodeError as error:
        report.add(str(path), f"byte {error.start}", "not UTF-8 text; Places lists are UTF-8 'path label' lines")
        return empty
