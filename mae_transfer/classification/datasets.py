"""mmengine datasets for iNaturalist 2017/2018/2019 and Places205/365 in their official layouts.

Both read their annotation files with :mod:`mae_transfer.data.annotations` (class
index rules and error messages are documented there) and yield dicts with ``img_path``,
``gt_label`` and ``source`` (the annotation file and line or image id, used in error messages)
to the pipeline. ``metainfo["classes"]`` holds the class names by index.

Config example::

    dataset = dict(type="MAETransferINaturalistDataset", data_root="data/inat2018",
                   ann_file="train2018.json", num_classes=8142, pipeline=train_pipeline)
    dataset = dict(type="MAETransferPlacesDataset", data_root="data/places365",
                   ann_file="places365_val.txt", data_prefix=dict(img_path="val_256"),
                   num_classes=365, pipeline=test_pipeline)
"""

from __future__ import annotations

import os
from typing import Any

from mmengine.dataset import BaseDataset

from mae_transfer.data.annotations import (
    AnnotationError,
    LabelledImage,
    read_inat_json,
    read_places_categories,
    read_places_list,
)


def _data_list(samples: list[LabelledImage], image_root: str) -> list[dict[str, Any]]:
    return [
        {"img_path": os.path.join(image_root, sample.path), "gt_label": sample.label, "source": sample.source}
        for sample in samples
    ]


class INaturalistDataset(BaseDataset):
    """An iNaturalist split from ``train{year}.json`` / ``val{year}.json``.

    Args:
        ann_file: the JSON file (relative to ``data_root`` or absolute).
        num_classes: if given, the file must define exactly this many categories (it is the
            model's head size, so a mismatch is reported before training starts).
        data_root: dataset root; ``file_name`` entries are relative to
            ``data_prefix["img_path"]`` (default: the root itself).
        **kwargs: the remaining :class:`mmengine.dataset.BaseDataset` arguments (``pipeline``,
            ``data_prefix``, ``test_mode``, ``indices``, ``serialize_data``, ``lazy_init``).
    """

    def __init__(self, ann_file: str, num_classes: int | None = None, data_root: str = "", **kwargs: Any) -> None:
        self.num_classes = num_classes
        super().__init__(ann_file=ann_file, data_root=data_root, **kwargs)

    def load_data_list(self) -> list[dict[str, Any]]:
        annotations = read_inat_json(self.ann_file)
        if self.num_classes is not None and len(annotations.classes) != self.num_classes:
            raise AnnotationError(
                self.ann_file, "categories",
                f"{len(annotations.classes)} categories; the config expects num_classes={self.num_classes}",
            )
        if not annotations.samples:
            raise AnnotationError(self.ann_file, "images", "no labelled images; expected at least one")
        self._metainfo["classes"] = annotations.classes
        return _data_list(annotations.samples, self.data_prefix.get("img_path", "") or self.data_root)


class PlacesDataset(BaseDataset):
    """A Places365-Standard or Places205 split from its ``path label`` file list.

    Args:
        ann_file: the list (``places365_val.txt``, ``train_places205.csv``...).
        num_classes: labels must lie in ``[0, num_classes)`` (365 or 205).
        categories_file: optional ``categories_places365.txt`` for class names; its length
            must equal ``num_classes``.
        data_root: dataset root; list paths are relative to ``data_prefix["img_path"]``
            (``data_256``, ``val_256`` or ``images256`` in the official layouts).
        **kwargs: the remaining :class:`mmengine.dataset.BaseDataset` arguments.
    """

    def __init__(
        self,
        ann_file: str,
        num_classes: int,
        categories_file: str | None = None,
        data_root: str = "",
        **kwargs: Any,
    ) -> None:
        self.num_classes = num_classes
        self.categories_file = categories_file
        super().__init__(ann_file=ann_file, data_root=data_root, **kwargs)

    def load_data_list(self) -> list[dict[str, Any]]:
        samples = read_places_list(self.ann_file, self.num_classes)
        if not samples:
            raise AnnotationError(self.ann_file, "", "no samples; expected 'relative/path.jpg label' lines")
        classes = tuple(str(index) for index in range(self.num_classes))
        if self.categories_file:
            path = os.path.join(self.data_root, self.categories_file)
            if not os.path.isfile(path):
                raise AnnotationError(path, "", "categories file not found")
            classes = read_places_categories(path)
            if len(classes) != self.num_classes:
                raise AnnotationError(path, "", f"{len(classes)} categories; the config expects "
                                                f"num_classes={self.num_classes}")
        self._metainfo["classes"] = classes
        return _data_list(samples, self.data_prefix.get("img_path", "") or self.data_root)
