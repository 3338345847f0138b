"""The ImageFolder layout (torchvision semantics), read without mmengine.

Classes are the sorted sub-folder names of a split folder; a class's images are the files below
its folder (recursive, symlinks followed) with an image extension, case-insensitive. Used by the
mmengine dataset (`mae_transfer.classification.imagefolder`) and by `data check/make imagenet`.
"""

from __future__ import annotations

import os

# torchvision.datasets.folder.IMG_EXTENSIONS
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def find_classes(folder: str) -> list[str]:
    """Sorted names of the sub-folders of ``folder`` (the classes)."""
    return sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())


def class_images(class_dir: str, extensions: tuple[str, ...] = IMG_EXTENSIONS) -> list[str]:
    """Image files below ``class_dir`` (recursive, symlinks followed), in sorted order."""
    found = []
    for directory, subdirs, files in sorted(os.walk(class_dir, followlinks=True)):
        subdirs.sort()
        found.extend(os.path.join(directory, name) for name in sorted(files) if name.lower().endswith(extensions))
    return found
