"""An ImageFolder dataset (torchvision semantics) for mmengine: ImageNet-1k ``train/`` and ``val/``.

Layout: ``ROOT/<split>/<class>/<image>``; classes are the sorted sub-folder names (ImageNet's
wnids, ``n01440764`` ...), a class's label is its index in that order, and images are the files
below each class folder (searched recursively) with an image extension (case-insensitive), as
``torchvision.datasets.ImageFolder`` reads them -- which is how the official MAE scripts read
ImageNet (``datasets.ImageFolder(os.path.join(args.data_path, 'train'))``). The validation split
must be re-organised into class folders the same way.

Config example::

    dataset = dict(type="MAETransferImageFolderDataset", data_root="data/imagenet",
                   data_prefix=dict(img_path="train"), num_classes=1000, pipeline=train_pipeline)
"""

from __future__ import annotations

import os
from typing import Any

from mmengine.dataset import BaseDataset

from mae_transfer.data.annotations import AnnotationError
from mae_transfer.data.image_folders import IMG_EXTENSIONS, class_images, find_classes


class ImageFolderDataset(BaseDataset):
    """One ImageFolder split (``data_prefix["img_path"]`` under ``data_root``).

    Args:
        num_classes: if given, the split must have exactly this many class folders (the head
            size; a mismatch is reported before training starts).
        extensions: accepted image suffixes (default torchvision's).
        data_root: dataset root.
        data_prefix: ``dict(img_path="train")`` or ``dict(img_path="val")``.
        **kwargs: the remaining :class:`mmengine.dataset.BaseDataset` arguments (``pipeline``,
            ``test_mode``, ``indices``, ``serialize_data``, ``lazy_init``).

    Raises:
        AnnotationError: the split folder is missing, has no class folders, a class folder has
            no image (ImageFolder refuses empty classes), or the class count differs from
            ``num_classes``. Each names the folder.
    """

    def __init__(
        self,
        num_classes: int | None = None,
        extensions: tuple[str, ...] = IMG_EXTENSIONS,
        data_root: str = "",
        data_prefix: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.num_classes = num_classes
        self.extensions = tuple(ext.lower() for ext in extensions)
        super().__init__(data_root=data_root, data_prefix=data_prefix or dict(img_path="train"), **kwargs)

    def load_data_list(self) -> list[dict[str, Any]]:
        folder = self.data_prefix.get("img_path", "") or self.data_root
        if not os.path.isdir(folder):
            raise AnnotationError(folder, "", "split folder not found; expected ROOT/train or ROOT/val with one "
                                              "folder per class")
        classes = find_classes(folder)
        if not classes:
            raise AnnotationError(folder, "", "no class folders; expected one sub-folder per class (ImageFolder "
                                              "layout; a flat val/ must be re-organised by class)")
        if self.num_classes is not None and len(classes) != self.num_classes:
            raise AnnotationError(folder, "", f"{len(classes)} class folders; the config expects "
                                              f"num_classes={self.num_classes}")
        data_list = []
        empty = []
        for label, name in enumerate(classes):
            images = class_images(os.path.join(folder, name), self.extensions)
            if not images:
                empty.append(name)
            data_list.extend({"img_path": path, "gt_label": label, "source": f"{folder}/{name}"} for path in images)
        if empty:
            raise AnnotationError(folder, ", ".join(empty[:5]), f"{len(empty)} class folder(s) without images "
                                  f"(extensions {', '.join(self.extensions)}); run `mae-transfer data check`")
        self._metainfo["classes"] = tuple(classes)
        return data_list
