"""Crops of the real photographs that ship inside scikit-image, as an ImageFolder pre-training set.

``skimage.data`` ships a few natural photographs in the package itself (astronaut, cat, coffee,
rocket, ...; nothing is downloaded: only files present in the installed package are read). The
demo pre-trains its tiny MAE on random crops of them instead of generated stripes::

    train/<photo>/crop_00000.png ...   ``num_train`` crops of the training photos
    val/<photo>/crop_00000.png ...     ``num_val`` crops of photos held out of training

Each crop covers 5-60% of its photo's area (log-uniform aspect ratio 3/4-4/3), is resized to
``image_size`` (bicubic) and saved as RGB PNG; grey photos are replicated to three channels. The
held-out photos are the last ``val_photos`` of :data:`PHOTOS` present, so the masked-patch loss
and the reconstruction figure are measured on photographs the model never saw.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
from PIL import Image

from mae_transfer.data.image_folders import class_images, find_classes
from mae_transfer.data.report import CheckReport, read_image

logger = logging.getLogger(__name__)

# natural photographs among skimage's packaged images (file name -> folder name), in order: the
# last four are held out for val (the reconstruction figure shows them); textures stay in train,
# text, silhouettes and synthetic images are left out
PHOTOS = {
    "astronaut.png": "astronaut", "camera.png": "camera", "coins.png": "coins", "moon.png": "moon",
    "hubble_deep_field.jpg": "hubble", "grass.png": "grass", "gravel.png": "gravel", "brick.png": "brick",
    "ihc.png": "ihc", "retina.jpg": "retina",
    "chelsea.png": "cat", "coffee.png": "coffee", "rocket.jpg": "rocket", "motorcycle_left.png": "motorcycle",
}


def packaged_photos() -> dict[str, Path]:
    """Folder name -> file of every :data:`PHOTOS` entry present in the installed skimage package."""
    try:
        import skimage.data
    except ImportError as error:
        raise ImportError("the photographs ship inside scikit-image: pip install scikit-image "
                          "(the project's [dev] extra pins it)") from error
    folder = Path(skimage.data.__file__).parent
    found = {name: folder / file for file, name in PHOTOS.items() if (folder / file).is_file()}
    if len(found) < 3:
        raise FileNotFoundError(f"{folder}: found {len(found)} of the photographs {sorted(PHOTOS)}; need at least 3")
    return found


def random_crop(photo: Image.Image, rng: np.random.Generator, size: int) -> Image.Image:
    """One crop of 5-60% of the photo's area, resized to ``size`` x ``size``."""
    width, height = photo.size
    area = width * height * rng.uniform(0.05, 0.6)
    aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    crop_w = min(width, max(8, int(round(math.sqrt(area * aspect)))))
    crop_h = min(height, max(8, int(round(math.sqrt(area / aspect)))))
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    return photo.crop((left, top, left + crop_w, top + crop_h)).resize((size, size), Image.BICUBIC)


def make(kind: str, out: Path, *, seed: int = 0, num_train: int = 64, num_val: int = 16, val_photos: int = 4,
         image_size: int = 64) -> Path:
    """Write ``num_train`` training and ``num_val`` held-out crops under ``out``; returns the root."""
    if kind != "photos":
        raise ValueError(f"unknown photos kind {kind!r}; expected 'photos'")
    photos = packaged_photos()
    names = list(photos)
    if not 1 <= val_photos < len(names):
        raise ValueError(f"val_photos: expected 1..{len(names) - 1}, got {val_photos}")
    splits = {"train": (names[:-val_photos], num_train), "val": (names[-val_photos:], num_val)}
    rng = np.random.default_rng(seed)
    loaded = {name: Image.open(path).convert("RGB") for name, path in photos.items()}
    root = Path(out)
    for split, (members, count) in splits.items():
        for name in members:
            (root / split / name).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            name = members[index % len(members)]
            random_crop(loaded[name], rng, image_size).save(root / split / name / f"crop_{index:05d}.png")
    logger.info("wrote %d + %d crops of %d skimage photographs to %s", num_train, num_val, len(names), root)
    return root


def check(kind: str, root: Path, *, quick: bool = False) -> CheckReport:
    """Both split folders with at least one class folder of images, every image decoding.

    The class folders (the photographs) differ between the splits on purpose.
    """
    if kind != "photos":
        raise ValueError(f"unknown photos kind {kind!r}; expected 'photos'")
    report = CheckReport(kind=kind, root=str(root))
    for split in ("train", "val"):
        folder = Path(root) / split
        if not folder.is_dir():
            report.add(folder, "", "split folder not found; expected one sub-folder per photograph")
            continue
        images = [Path(p) for name in find_classes(str(folder)) for p in class_images(str(folder / name))]
        if not images:
            report.add(folder, "", "no images in any class folder")
        report.counts[f"{split} images"] = len(images)
        for path in images:
            if read_image(path, quick=quick)[1] is not None:
                report.add(path, "", read_image(path, quick=quick)[1])
    return report
