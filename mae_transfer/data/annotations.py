"""Readers for the official iNaturalist and Places annotation files (pure Python, no torch).

iNaturalist 2017 / 2018 / 2019 (``train{year}.json``, ``val{year}.json``): COCO-like JSON with
``images`` (``id``, ``file_name`` relative to the dataset root), ``annotations`` (``image_id``,
``category_id``) and ``categories`` (``id``, ``name``). Every train/val image has one label.

Class index rule (stable, documented): the class index of a category is the position of its
``id`` in the sorted list of all category ids of the annotation file. The official files use
ids 0..N-1 in all three years, so there the index equals the id; the rule keeps the mapping
dense and independent of the order in which ``categories`` is listed.

Places365-Standard (``places365_train_standard.txt``, ``places365_val.txt``) and Places205
(``train_places205.csv``, ``val_places205.csv``): one ``relative/path label`` per line, labels
0..num_classes-1. Places365 train paths start with ``/`` (``/a/airfield/00000001.jpg``); they
are taken relative to the image directory.

Readers raise :class:`AnnotationError` naming the file, the key or line, and what was expected.
Passing ``on_error`` collects every defect instead (used by ``mae-transfer data check``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ErrorSink = Callable[[str, str, str], None]


class AnnotationError(ValueError):
    """A defect in an annotation file: ``file [where]: message``."""

    def __init__(self, file: str | Path, where: str, message: str) -> None:
        self.file, self.where, self.message = str(file), str(where), message
        location = f"{self.file} [{self.where}]" if self.where else self.file
        super().__init__(f"{location}: {message}")


def _raise(file: str, where: str, message: str) -> None:
    raise AnnotationError(file, where, message)


@dataclass(frozen=True)
class LabelledImage:
    """One sample: image path (relative to the image root), class index, and where it came from."""

    path: str
    label: int
    file: str
    where: str

    @property
    def source(self) -> str:
        """``file [where]``: the annotation entry this sample was read from."""
        return f"{self.file} [{self.where}]"


@dataclass(frozen=True)
class ClassificationAnnotations:
    """The samples of one split and the class names indexed by class index."""

    samples: list[LabelledImage]
    classes: tuple[str, ...]


def read_inat_json(ann_file: str | Path, on_error: ErrorSink | None = None) -> ClassificationAnnotations:
    """Read an iNaturalist ``train{year}.json`` / ``val{year}.json``.

    Args:
        ann_file: the JSON file.
        on_error: called as ``on_error(file, where, message)`` for each defect; the default raises
            :class:`AnnotationError` at the first one. Defective entries are skipped.

    Returns:
        samples with ``path`` = the image's ``file_name`` (relative to the dataset root) and
        ``label`` = class index (see the module docstring), and class names by class index.
    """
    report = on_error or _raise
    file = str(ann_file)
    if not Path(file).is_file():
        report(file, "", "annotation file not found")
        return ClassificationAnnotations([], ())
    try:
        with open(file, encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as error:
        report(file, f"line {error.lineno}", f"not valid JSON: {error.msg}")
        return ClassificationAnnotations([], ())
    if not isinstance(data, dict):
        report(file, "", "expected a JSON object with 'images', 'annotations' and 'categories'")
        return ClassificationAnnotations([], ())
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            report(file, key, f"missing or not a list; expected '{key}': [...] (COCO-like iNat layout)")
            return ClassificationAnnotations([], ())

    names: dict[int, str] = {}
    for position, category in enumerate(data["categories"]):
        cid = category.get("id") if isinstance(category, dict) else None
        if not isinstance(cid, int):
            report(file, f"categories[{position}]", "expected an object with an integer 'id'")
        elif cid in names:
            report(file, f"categories[{position}]", f"duplicate category id {cid}")
        else:
            names[cid] = str(category.get("name", cid))
    index_of = {cid: index for index, cid in enumerate(sorted(names))}

    file_names: dict[object, str] = {}
    for position, image in enumerate(data["images"]):
        if not isinstance(image, dict) or "id" not in image or not isinstance(image.get("file_name"), str):
            report(file, f"images[{position}]", "expected an object with 'id' and a string 'file_name'")
        elif image["id"] in file_names:
            report(file, f"images[{position}]", f"duplicate image id {image['id']}")
        else:
            file_names[image["id"]] = image["file_name"]

    labels: dict[object, int] = {}
    for position, annotation in enumerate(data["annotations"]):
        where = f"annotations[{position}]"
        if not isinstance(annotation, dict) or "image_id" not in annotation or "category_id" not in annotation:
            report(file, where, "expected an object with 'image_id' and 'category_id'")
            continue
        image_id, cid = annotation["image_id"], annotation["category_id"]
        where = f"annotations[{position}] (image id {image_id})"
        if image_id not in file_names:
            report(file, where, f"image_id {image_id!r} is not listed in 'images'")
        elif cid not in index_of:
            report(file, where, f"unknown category_id {cid!r}; expected one of the {len(index_of)} ids in 'categories'")
        elif image_id in labels and labels[image_id] != index_of[cid]:
            report(file, where, f"image {image_id!r} already has another category; expected one label per image")
        else:
            labels[image_id] = index_of[cid]

    samples = []
    for image_id, file_name in file_names.items():
        if image_id not in labels:
            report(file, f"image id {image_id}", f"image {file_name!r} has no annotation; expected exactly one")
            continue
        samples.append(LabelledImage(file_name, labels[image_id], file, f"image id {image_id}"))
    classes = tuple(names[cid] for cid in sorted(names))
    return ClassificationAnnotations(samples, classes)


def read_places_list(
    list_file: str | Path, num_classes: int, on_error: ErrorSink | None = None
) -> list[LabelledImage]:
    """Read a Places file list (``path label`` per line; blank lines are ignored).

    Args:
        list_file: ``places365_train_standard.txt``, ``places365_val.txt``, ``train_places205.csv``...
        num_classes: labels must lie in ``[0, num_classes)``.
        on_error: called as ``on_error(file, "line N", message)`` per defect; default raises.

    Returns:
        samples with ``path`` relative to the image directory (a leading ``/`` removed).
    """
    report = on_error or _raise
    file = str(list_file)
    if not Path(file).is_file():
        report(file, "", "file list not found")
        return []
    samples = []
    with open(file, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.strip()
            if not line:
                continue
            fields = line.split()
            where = f"line {number}"
            if len(fields) != 2:
                report(file, where, f"expected 'relative/path.jpg label' (2 fields), found {len(fields)}: {line!r}")
                continue
            path, label_text = fields
            try:
                label = int(label_text)
            except ValueError:
                report(file, where, f"label {label_text!r} is not an integer")
                continue
            if not 0 <= label < num_classes:
                report(file, where, f"unknown category {label}; expected a label in 0..{num_classes - 1}")
                continue
            samples.append(LabelledImage(path.lstrip("/"), label, file, where))
    return samples


def read_places_categories(categories_file: str | Path, on_error: ErrorSink | None = None) -> tuple[str, ...]:
    """Read ``categories_places365.txt`` (``/a/airfield 0`` per line) into names by label."""
    report = on_error or _raise
    file = str(categories_file)
    names: dict[int, str] = {}
    with open(file, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            fields = raw.split()
            if not fields:
                continue
            if len(fields) != 2 or not fields[1].isdigit():
                report(file, f"line {number}", f"expected '/x/name index', found {raw.strip()!r}")
                continue
            names[int(fields[1])] = fields[0]
    expected = set(range(len(names)))
    if set(names) != expected:
        report(file, "", f"category indices are not 0..{len(names) - 1} without gaps")
        return ()
    return tuple(names[index] for index in range(len(names)))
