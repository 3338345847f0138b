"""ADE20K (ADEChallengeData2016): a synthetic generator and a validator for the official layout.

Layout (what MMSegmentation's ``ADE20KDataset`` reads)::

    ROOT/images/{training,validation}/ADE_{train,val}_XXXXXXXX.jpg
    ROOT/annotations/{training,validation}/ADE_{train,val}_XXXXXXXX.png

Label maps are single-channel PNGs with values 0..150: 0 is "unlabeled" and 1..150 are the
150 classes. Training uses ``reduce_zero_label=True``: 0 becomes the ignore index 255 and
class ``k`` becomes ``k - 1``. The official split has 20,210 training and 2,000 validation
images.

The synthetic scenes are "Mondrian" layouts: each image is cut by axis-aligned splits into a
few large rectangles, each filled with one class's colour and stripe texture plus noise, and
separated by thin unlabeled (0) seams, so a tiny segmenter learns them in minutes and the
ignore handling is exercised. ``label_space="ade20k"`` draws the rectangles' classes from all
150 classes (each with a colour and texture derived from its id) instead of the 8 below, so the
label maps span ADE20K's whole label space. A marker file ``SYNTHETIC_MARKER`` at the root records how the
set was made; the validator treats a count mismatch as a note for such sets and as a defect
for any other (a partial download or extraction).
"""

from __future__ import annotations

import colorsys
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from mae_transfer.data.report import CheckReport, read_image

logger = logging.getLogger(__name__)

NUM_CLASSES = 150
SPLITS = ("training", "validation")
FILE_PREFIX = {"training": "ADE_train_", "validation": "ADE_val_"}
OFFICIAL_COUNTS = {"training": 20210, "validation": 2000}
SYNTHETIC_MARKER = "mae_transfer_synthetic.json"
LAYOUT_DIR = "ADEChallengeData2016"

# The classes the synthetic scenes use (ADE20K ids, 1..150; 150 probes the top of the range),
# each with a distinct RGB colour and a stripe texture (angle in degrees, period in pixels).
SYNTHETIC_CLASSES: tuple[tuple[int, tuple[int, int, int], float, float], ...] = (
    (1, (200, 40, 40), 0.0, 12.0),
    (3, (40, 170, 60), 90.0, 10.0),
    (5, (40, 70, 210), 45.0, 14.0),
    (13, (220, 200, 40), 135.0, 9.0),
    (22, (180, 60, 190), 0.0, 6.0),
    (42, (40, 190, 200), 90.0, 16.0),
    (77, (235, 235, 235), 45.0, 8.0),
    (150, (90, 60, 30), 135.0, 11.0),
)
LABEL_SPACES = ("synthetic", "ade20k")


def _class_table(label_space: str) -> tuple[tuple[int, tuple[int, int, int], float, float], ...]:
    """(class id, RGB colour, stripe angle, stripe period) of every class a scene may use."""
    if label_space == "synthetic":
        return SYNTHETIC_CLASSES
    if label_space != "ade20k":
        raise ValueError(f"label_space must be one of {LABEL_SPACES}, got {label_space!r}")
    table = []
    for class_id in range(1, NUM_CLASSES + 1):
        rgb = colorsys.hsv_to_rgb((class_id * 0.618034) % 1.0, 0.7, 0.85)
        table.append((class_id, tuple(int(v * 255) for v in rgb), 45.0 * (class_id % 4), 6.0 + class_id % 11))
    return tuple(table)


def _split_rectangles(rng: np.random.Generator, height: int, width: int, pieces: int,
                      min_side: int) -> list[tuple[int, int, int, int]]:
    """Cut (0, 0, height, width) into up to ``pieces`` rectangles (y0, x0, y1, x1)."""
    rects = [(0, 0, height, width)]
    for _ in range(pieces - 1):
        order = rng.permutation(len(rects))
        for index in order:
            y0, x0, y1, x1 = rects[index]
            axes = [axis for axis, side in ((0, y1 - y0), (1, x1 - x0)) if side >= 2 * min_side]
            if not axes:
                continue
            axis = axes[rng.integers(len(axes))]
            lo, hi = (y0, y1) if axis == 0 else (x0, x1)
            cut = int(rng.integers(lo + min_side, hi - min_side + 1))
            first, second = ((y0, x0, cut, x1), (cut, x0, y1, x1)) if axis == 0 else \
                ((y0, x0, y1, cut), (y0, cut, y1, x1))
            rects[index:index + 1] = [first, second]
            break
    return rects


def _scene(rng: np.random.Generator, height: int, width: int,
           classes: tuple[tuple[int, tuple[int, int, int], float, float], ...] = SYNTHETIC_CLASSES,
           ) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic image (H, W, 3) uint8 and its label map (H, W) uint8 in 0..150."""
    rects = _split_rectangles(rng, height, width, pieces=int(rng.integers(2, 5)),
                              min_side=max(16, min(height, width) // 4))
    image = np.zeros((height, width, 3), np.float32)
    label = np.zeros((height, width), np.uint8)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    seam = 1
    for y0, x0, y1, x1 in rects:
        class_id, colour, angle, period = classes[rng.integers(len(classes))]
        theta = np.deg2rad(angle)
        phase = rng.uniform(0, 2 * np.pi)
        stripes = np.sin(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / period + phase)
        region = np.asarray(colour, np.float32) + 25.0 * stripes[..., None]
        image[y0:y1, x0:x1] = region[y0:y1, x0:x1]
        label[y0 + seam:y1 - seam, x0 + seam:x1 - seam] = class_id
    image += rng.normal(0.0, 8.0, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8), label


def make(kind: str, out: Path, *, seed: int = 0, num_train: int = 48, num_val: int = 16,
         image_size: tuple[int, int] = (160, 224), label_space: str = "synthetic", **options) -> Path:
    """Write a synthetic ADEChallengeData2016-layout dataset under ``out``; returns ``out``.

    Args:
        kind: must be ``"ade20k"``.
        out: the dataset root to create (existing files of the same names are overwritten).
        seed: seeds every layout, colour jitter and noise; the same seed gives the same files.
        num_train: number of training image/label pairs.
        num_val: number of validation image/label pairs.
        image_size: (height, width) of every image.
        label_space: ``synthetic`` (8 classes) or ``ade20k`` (all 150 classes).
    """
    if kind != "ade20k":
        raise ValueError(f"mae_transfer.data.ade20k makes 'ade20k' datasets, not {kind!r}")
    if options:
        raise TypeError(f"unknown ade20k option(s) {sorted(options)}; expected num_train, num_val, image_size, "
                        "label_space")
    classes = _class_table(label_space)
    root = Path(out)
    rng = np.random.default_rng(seed)
    height, width = image_size
    for split, count in (("training", num_train), ("validation", num_val)):
        image_dir = root / "images" / split
        label_dir = root / "annotations" / split
        image_dir.mkdir(parents=True, exist_ok=True)
        label_dir.mkdir(parents=True, exist_ok=True)
        for index in range(1, count + 1):
            image, label = _scene(rng, height, width, classes)
            stem = f"{FILE_PREFIX[split]}{index:08d}"
            Image.fromarray(image).save(image_dir / f"{stem}.jpg", quality=92)
            Image.fromarray(label, mode="L").save(label_dir / f"{stem}.png")
    marker = {
        "generator": "mae_transfer.data.ade20k",
        "seed": seed,
        "counts": {"training": num_train, "validation": num_val},
        "image_size": [height, width],
        "classes": [class_id for class_id, *_ in classes],
    }
    (root / SYNTHETIC_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    logger.info("wrote synthetic ADE20K (%d train, %d val, %dx%d) to %s",
                num_train, num_val, height, width, root)
    return root


def _check_pair(image_path: Path, label_path: Path, stem: str,
                quick: bool = False) -> tuple[list[tuple[str, str, str]], np.ndarray | None]:
    """Problems of one image/label pair (file, where, message) and the label's class histogram.

    The image is decoded in full unless ``quick``; the label map always is (its values are checked).
    """
    problems: list[tuple[str, str, str]] = []
    image_size, problem = read_image(image_path, quick=quick)
    if problem:
        return [(str(image_path), stem, problem)], None
    try:
        with Image.open(label_path) as label_image:
            mode, label_size = label_image.mode, label_image.size
            label = np.asarray(label_image) if mode in ("L", "P") else None
    except (OSError, ValueError) as error:
        return [(str(label_path), stem, f"unreadable label map: {error}")], None
    if label is None:
        problems.append((str(label_path), stem,
                         f"label map has PNG mode {mode!r}; expected a single-channel 8-bit map (mode 'L' or 'P')"))
        return problems, None
    if label_size != image_size:
        problems.append((str(label_path), stem,
                         f"label map is {label_size[0]}x{label_size[1]} (WxH) but its image "
                         f"{image_path.name} is {image_size[0]}x{image_size[1]}; expected equal sizes"))
    histogram = np.bincount(label.ravel(), minlength=256)
    bad = np.flatnonzero(histogram[NUM_CLASSES + 1:]) + NUM_CLASSES + 1
    if bad.size:
        shown = ", ".join(str(value) for value in bad[:5]) + (", ..." if bad.size > 5 else "")
        problems.append((str(label_path), stem,
                         f"label values {shown} outside 0..{NUM_CLASSES} (0 = unlabeled, 1..{NUM_CLASSES} = classes)"))
    return problems, histogram[:NUM_CLASSES + 1] > 0


def check(kind: str, root: Path, *, official_counts: bool | None = None, workers: int = 4,
          quick: bool = False) -> CheckReport:
    """Validate an ADEChallengeData2016 root; every defect names its file and image id.

    Checks: the four split directories exist; every image has a label map and every label map
    an image; each pair decodes in full, is equal in size, single-channel, with values in
    0..150; and the number of pairs per split against the official 20,210 / 2,000.

    Args:
        kind: must be ``"ade20k"``.
        root: the ADEChallengeData2016 directory (or its parent, which is then descended into).
        official_counts: True: a count different from the official one is a defect; False: a
            note; None (default): a note for a set carrying the synthetic marker, else a defect.
        workers: threads decoding label maps.
        quick: read image headers only (label maps are still decoded).
    """
    if kind != "ade20k":
        raise ValueError(f"mae_transfer.data.ade20k checks 'ade20k' datasets, not {kind!r}")
    root = Path(root)
    report = CheckReport(kind=kind, root=str(root))
    if not (root / "images").is_dir() and (root / LAYOUT_DIR / "images").is_dir():
        report.notes.append(f"using {root / LAYOUT_DIR}")
        root = root / LAYOUT_DIR
    if not root.is_dir():
        report.add(str(root), "", "dataset root does not exist or is not a directory")
        return report
    synthetic = (root / SYNTHETIC_MARKER).is_file()
    strict_counts = (not synthetic) if official_counts is None else official_counts
    present = np.zeros(NUM_CLASSES + 1, bool)
    for split in SPLITS:
        image_dir, label_dir = root / "images" / split, root / "annotations" / split
        missing_dir = False
        for directory, suffix in ((image_dir, ".jpg"), (label_dir, ".png")):
            if not directory.is_dir():
                report.add(str(directory), "", f"missing directory; expected the {split} split's "
                           f"*{suffix} files here (ADEChallengeData2016 layout)")
                missing_dir = True
        if missing_dir:
            continue
        images = {path.stem: path for path in image_dir.glob("*.jpg")}
        labels = {path.stem: path for path in label_dir.glob("*.png")}
        for stem in sorted(images.keys() - labels.keys()):
            report.add(str(images[stem]), stem, f"image has no label map; expected {label_dir / (stem + '.png')}")
        for stem in sorted(labels.keys() - images.keys()):
            report.add(str(labels[stem]), stem, f"label map has no image; expected {image_dir / (stem + '.jpg')}")
        pairs = sorted(images.keys() & labels.keys())
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            results = list(pool.map(lambda stem: _check_pair(images[stem], labels[stem], stem, quick), pairs))
        for problems, classes in results:
            for problem in problems:
                report.add(*problem)
            if classes is not None:
                present |= classes
        report.counts[f"{split} images"] = len(images)
        report.counts[f"{split} label maps"] = len(labels)
        expected = OFFICIAL_COUNTS[split]
        if not pairs:
            use = "training" if split == "training" else "evaluation"
            report.add(str(image_dir), split, f"no image/label pairs in the {split} split; {use} needs at least one "
                       f"(*.jpg here, the same names as *.png in {label_dir})")
        elif len(pairs) != expected:
            message = (f"{len(pairs)} {split} image/label pairs; the official ADE20K split has {expected:,}")
            if strict_counts:
                report.add(str(image_dir), split, message)
            else:
                report.notes.append(message + (" (synthetic set)" if synthetic else ""))
    report.counts["classes present (1..150)"] = int(present[1:].sum())
    if synthetic:
        report.notes.append(f"synthetic set ({SYNTHETIC_MARKER} present)")
    return report
