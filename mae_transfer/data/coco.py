"""COCO 2017 instance segmentation: a synthetic generator and a layout validator.

Layout (the official one)::

    ROOT/annotations/instances_train2017.json
    ROOT/annotations/instances_val2017.json
    ROOT/train2017/000000000001.jpg ...
    ROOT/val2017/...

The synthetic set draws a few well-separated filled shapes per image; each class has its own
shape and colour, so a small detector learns it in minutes. Masks are stored as polygons
(most objects), compressed RLE (every fourth object) and, for the occasional crowd region,
uncompressed RLE with ``iscrowd=1`` as in the real files. Category ids are not contiguous,
like COCO's. With ``label_space="coco"`` the files carry COCO's 80 official categories
(ids 1..90 with COCO's gaps and official names, ``coco_categories.py``), each drawn with one of
the three shapes and its own colour, so a real COCO config runs on them unchanged. Everything
is drawn from ``numpy.random.default_rng(seed)``, so the same seed
writes byte-identical JSON and images.
"""

from __future__ import annotations

import colorsys
import json
import logging
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mae_transfer.data.coco_categories import COCO_CATEGORIES
from mae_transfer.data.report import CheckReport, outside_base, read_image

logger = logging.getLogger(__name__)

SPLITS = ("train", "val")

# (id, name, RGB colour); the ids skip numbers on purpose, as COCO's do.
SYNTHETIC_CATEGORIES: tuple[tuple[int, str, tuple[int, int, int]], ...] = (
    (1, "square", (220, 40, 40)),
    (3, "disk", (40, 190, 60)),
    (5, "triangle", (50, 80, 230)),
)
SYNTHETIC_CLASSES: tuple[str, ...] = tuple(name for _, name, _ in SYNTHETIC_CATEGORIES)
LABEL_SPACES = ("synthetic", "coco")
SHAPES = ("square", "disk", "triangle")

# Boxes may touch the border; allow for float rounding in real annotation files.
_BOX_TOLERANCE = 1.0


def annotation_file(root: Path, split: str) -> Path:
    """``ROOT/annotations/instances_{split}2017.json``."""
    return root / "annotations" / f"instances_{split}2017.json"


def image_dir(root: Path, split: str) -> Path:
    """``ROOT/{split}2017``."""
    return root / f"{split}2017"


# --------------------------------------------------------------------------- generator


def make(
    kind: str,
    out: Path,
    *,
    seed: int = 0,
    num_train: int = 96,
    num_val: int = 32,
    image_size: int | tuple[int, int] = 128,
    max_objects: int = 3,
    crowd_every: int = 10,
    label_space: str = "synthetic",
) -> Path:
    """Write a synthetic COCO-layout instance segmentation set under ``out``.

    Args:
        kind: must be ``"coco"``.
        out: dataset root to create (existing annotation files are overwritten).
        seed: seed of the only random generator used.
        num_train: images in ``train2017``.
        num_val: images in ``val2017``.
        image_size: side of the square images, or (width, height), in pixels (>= 64).
        max_objects: at most this many shapes per image (at least one).
        crowd_every: every n-th image also gets an ``iscrowd=1`` region (0 = never).
        label_space: ``synthetic`` (3 shape classes, ids 1, 3, 5) or ``coco`` (COCO's 80
            official categories, ids and names).

    Returns:
        The dataset root.
    """
    if kind != "coco":
        raise ValueError(f"mae_transfer.data.coco makes kind 'coco', not {kind!r}")
    width, height = (image_size, image_size) if isinstance(image_size, int) else (int(image_size[0]), int(image_size[1]))
    if min(width, height) < 64:
        raise ValueError(f"image_size must be >= 64 pixels, got {image_size}")
    if label_space not in LABEL_SPACES:
        raise ValueError(f"label_space must be one of {LABEL_SPACES}, got {label_space!r}")
    if max_objects < 1:
        raise ValueError(f"max_objects must be >= 1, got {max_objects}")
    from pycocotools import mask as mask_utils

    out = Path(out)
    rng = np.random.default_rng(seed)
    palette = _palette(label_space)
    if label_space == "coco":
        categories = [{"id": cid, "name": name, "supercategory": sup} for cid, name, sup in COCO_CATEGORIES]
    else:
        categories = [{"id": cid, "name": name, "supercategory": "shape"} for cid, name, _ in SYNTHETIC_CATEGORIES]
    image_id = 0
    annotation_id = 0
    for split, count in zip(SPLITS, (num_train, num_val)):
        folder = image_dir(out, split)
        folder.mkdir(parents=True, exist_ok=True)
        images: list[dict[str, Any]] = []
        annotations: list[dict[str, Any]] = []
        for index in range(count):
            image_id += 1
            file_name = f"{image_id:012d}.jpg"
            canvas, objects = _draw_image(rng, (height, width), max_objects, palette)
            if crowd_every and index % crowd_every == crowd_every - 1:
                objects.append(_crowd_region(rng, canvas, objects, palette))
            Image.fromarray(canvas).save(folder / file_name, quality=95)
            images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
            for obj in objects:
                annotation_id += 1
                annotations.append(_annotation(mask_utils, annotation_id, image_id, obj, as_rle=annotation_id % 4 == 0))
        payload = {
            "info": {"description": f"mae-transfer synthetic COCO ({split}), seed {seed}", "version": "1.0"},
            "licenses": [],
            "images": images,
            "annotations": annotations,
            "categories": categories,
        }
        path = annotation_file(out, split)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload))
        logger.info("wrote %s: %d images, %d annotations", path, len(images), len(annotations))
    return out


def _palette(label_space: str) -> list[tuple[int, str, tuple[int, int, int]]]:
    """(category id, shape, RGB colour) per category of a label space."""
    if label_space == "synthetic":
        return list(SYNTHETIC_CATEGORIES)
    palette = []
    for index, (cid, _, _) in enumerate(COCO_CATEGORIES):
        rgb = colorsys.hsv_to_rgb((index * 0.618034) % 1.0, 0.75, 0.85)
        palette.append((cid, SHAPES[index % len(SHAPES)], tuple(int(v * 255) for v in rgb)))
    return palette


def _draw_image(rng: np.random.Generator, shape: tuple[int, int], max_objects: int,
                palette: list[tuple[int, str, tuple[int, int, int]]]) -> tuple[np.ndarray, list[dict]]:
    """A lightly textured (height, width) background with 1..max_objects non-overlapping shapes."""
    height, width = shape
    size = min(height, width)
    base = rng.integers(150, 200)
    canvas = np.clip(base + rng.normal(0, 6, (height, width, 3)), 0, 255).astype(np.uint8)
    objects: list[dict] = []
    occupied: list[tuple[float, float, float]] = []
    wanted = int(rng.integers(1, max_objects + 1))
    for _ in range(wanted * 20):
        if len(objects) == wanted:
            break
        radius = float(rng.uniform(0.12, 0.22) * size)
        cx, cy = (float(v) for v in rng.uniform(radius + 2, np.array([width, height]) - radius - 2))
        if any(math.hypot(cx - x, cy - y) < radius + r + 6 for x, y, r in occupied):
            continue
        occupied.append((cx, cy, radius))
        class_index = int(rng.integers(len(palette)))
        polygon = _shape_polygon(palette[class_index][1], cx, cy, radius, float(rng.uniform(0, math.pi)))
        colour = np.clip(np.array(palette[class_index][2]) + rng.integers(-20, 21, 3), 0, 255)
        mask = _polygon_mask(polygon, (height, width))
        canvas[mask] = colour.astype(np.uint8)
        objects.append({"category_id": palette[class_index][0], "polygon": polygon, "mask": mask})
    return canvas, objects


def _shape_polygon(name: str, cx: float, cy: float, radius: float, angle: float) -> list[float]:
    """Vertices (x0, y0, x1, y1, ...) of a square, a disk (32-gon) or a triangle."""
    if name == "square":
        corners, angle = 4, angle / 2
    elif name == "triangle":
        corners = 3
    else:
        corners = 32
    points: list[float] = []
    for k in range(corners):
        theta = angle + 2 * math.pi * k / corners
        points += [round(cx + radius * math.cos(theta), 2), round(cy + radius * math.sin(theta), 2)]
    return points


def _polygon_mask(polygon: list[float], shape: tuple[int, int]) -> np.ndarray:
    """The polygon rasterised by pycocotools on a (height, width) image, so pixels, area and box
    agree with its decoding."""
    from pycocotools import mask as mask_utils

    return mask_utils.decode(mask_utils.frPyObjects([polygon], shape[0], shape[1]))[:, :, 0].astype(bool)


def _crowd_region(rng: np.random.Generator, canvas: np.ndarray, objects: list[dict],
                  palette: list[tuple[int, str, tuple[int, int, int]]]) -> dict:
    """A cluster of small dots of one class marked as a crowd, placed on free background."""
    height, width = canvas.shape[:2]
    taken = np.zeros((height, width), dtype=bool)
    for obj in objects:
        taken |= obj["mask"]
    class_index = int(rng.integers(len(palette)))
    colour = np.array(palette[class_index][2], dtype=np.uint8)
    mask = np.zeros((height, width), dtype=bool)
    yy, xx = np.mgrid[:height, :width]
    for _ in range(12):
        cx, cy = rng.uniform(4, np.array([width, height]) - 4)
        dot = (xx - cx) ** 2 + (yy - cy) ** 2 <= 4.0
        if not (dot & taken).any():
            mask |= dot
    if not mask.any():  # the image is full: fall back to a single free pixel block
        free = np.argwhere(~taken)
        y, x = free[len(free) // 2]
        mask[y, x] = True
    canvas[mask] = colour
    return {"category_id": palette[class_index][0], "mask": mask, "crowd": True}


def _uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE: run lengths over the column-major pixels, starting with zeros."""
    flat = mask.flatten(order="F").astype(np.uint8)
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0]:
        counts = [0] + counts
    return {"size": list(mask.shape), "counts": counts}


def _annotation(mask_utils: Any, annotation_id: int, image_id: int, obj: dict, *, as_rle: bool) -> dict:
    """One COCO annotation; box and area come from the drawn mask so all three agree."""
    encoded = mask_utils.encode(np.asfortranarray(obj["mask"].astype(np.uint8)))
    x, y, w, h = (float(v) for v in mask_utils.toBbox(encoded))
    crowd = bool(obj.get("crowd"))
    if crowd:
        segmentation: Any = _uncompressed_rle(obj["mask"])
    elif as_rle:
        segmentation = {"size": list(encoded["size"]), "counts": encoded["counts"].decode("ascii")}
    else:
        segmentation = [obj["polygon"]]
    return {
        "id": annotation_id,
        "image_id": image_id,
        "category_id": obj["category_id"],
        "segmentation": segmentation,
        "area": float(mask_utils.area(encoded)),
        "bbox": [x, y, w, h],
        "iscrowd": int(crowd),
    }


# --------------------------------------------------------------------------- validator


def check(kind: str, root: Path, *, quick: bool = False) -> CheckReport:
    """Validate a COCO 2017 root: files, ids, categories, boxes and masks of both splits.

    Reported as problems (each naming the file and the image/annotation id): missing or
    unreadable annotation files, images that are missing or do not decode (every image is
    decoded in full; ``quick`` reads headers only), image sizes that disagree with the JSON,
    duplicate image/annotation/category ids, annotations pointing at unknown images or
    categories, boxes that are not finite numbers, lie outside the image or have non-positive
    size, empty or malformed segmentations, and an empty ``annotations`` list. Images without
    annotations are legal in COCO and only counted.
    """
    root = Path(root)
    report = CheckReport(kind=kind, root=str(root))
    if not root.is_dir():
        report.add(str(root), "", "dataset root does not exist or is not a directory")
        return report
    for split in SPLITS:
        _check_split(root, split, report, quick)
    return report


def _check_split(root: Path, split: str, report: CheckReport, quick: bool) -> None:
    path = annotation_file(root, split)
    if not path.is_file():
        report.add(str(path), "", f"annotation file missing (expected the {split} split in COCO 2017 layout)")
        return
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        report.add(str(path), f"byte {error.start}", "not UTF-8 text; COCO annotation files are UTF-8 JSON")
        return
    except json.JSONDecodeError as error:
        report.add(str(path), f"line {error.lineno}", f"not valid JSON: {error.msg}")
        return
    except OSError as error:
        report.add(str(path), "", f"cannot read the file: {error}")
        return
    if not isinstance(data, dict):
        report.add(str(path), "", f"the top level is a JSON {type(data).__name__}; expected an object with "
                   "'images', 'annotations' and 'categories' lists")
        return
    missing = [key for key in ("images", "annotations", "categories") if not isinstance(data.get(key), list)]
    if missing:
        report.add(str(path), ", ".join(missing), "top-level key missing or not a list")
        return
    images = _check_images(root, split, path, data["images"], report, quick)
    category_ids = _unique_ids(path, "category", data["categories"], report)
    annotations = data["annotations"]
    if not annotations:
        report.add(str(path), "annotations", "the annotations list is empty (expected at least one object)")
    _unique_ids(path, "annotation", annotations, report)
    annotated: set[Any] = set()
    for ann in annotations:
        annotated.add(ann.get("image_id"))
        _check_annotation(path, ann, images, category_ids, report)
    report.counts[f"{split}_images"] = len(images)
    report.counts[f"{split}_annotations"] = len(annotations)
    report.counts[f"{split}_categories"] = len(category_ids)
    unannotated = len(set(images) - annotated)
    if unannotated:
        report.notes.append(f"{split}: {unannotated} image(s) without annotations (allowed; training skips them)")


def _unique_ids(path: Path, what: str, entries: list, report: CheckReport) -> set[Any]:
    """The ids of ``entries``; reports entries without an id and each duplicated id once."""
    seen: Counter = Counter()
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict) or "id" not in entry:
            report.add(str(path), f"{what}s[{position}]", f"{what} entry has no 'id'")
            continue
        seen[entry["id"]] += 1
    for entry_id, count in seen.items():
        if count > 1:
            report.add(str(path), f"{what} id {entry_id}", f"duplicate {what} id ({count} entries share it)")
    return set(seen)


def _check_images(root: Path, split: str, path: Path, entries: list, report: CheckReport,
                  quick: bool) -> dict[Any, tuple]:
    """Image id -> (width, height); reports missing, undecodable and mis-sized image files."""
    _unique_ids(path, "image", entries, report)
    sizes: dict[Any, tuple] = {}
    folder = image_dir(root, split)
    for entry in entries:
        if not isinstance(entry, dict) or "id" not in entry:
            continue
        where = f"image id {entry['id']}"
        width, height, file_name = entry.get("width"), entry.get("height"), entry.get("file_name")
        if not isinstance(file_name, str) or not isinstance(width, int) or not isinstance(height, int):
            report.add(str(path), where, "image entry needs 'file_name' (str), 'width' and 'height' (int)")
            continue
        sizes[entry["id"]] = (width, height)
        image_path = folder / file_name
        escape = outside_base(file_name, folder)
        if escape:
            report.add(str(path), where, escape)
            continue
        if not image_path.is_file():
            report.add(str(image_path), where, "image file missing")
            continue
        actual, problem = read_image(image_path, quick=quick)
        if problem:
            report.add(str(image_path), where, problem)
            continue
        if actual != (width, height):
            report.add(str(image_path), where, f"image is {actual[0]}x{actual[1]}, JSON says {width}x{height}")
    return sizes


def _check_annotation(path: Path, ann: Any, images: dict, category_ids: set, report: CheckReport) -> None:
    if not isinstance(ann, dict) or "id" not in ann:
        return  # already reported by _unique_ids
    where = f"annotation id {ann['id']}"
    image_id = ann.get("image_id")
    if image_id not in images:
        report.add(str(path), where, f"image_id {image_id!r} is not in 'images'")
    if ann.get("category_id") not in category_ids:
        report.add(str(path), where, f"category_id {ann.get('category_id')!r} is not in 'categories' "
                   f"(known: {sorted(category_ids)})")
    bbox = ann.get("bbox")
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
        report.add(str(path), where, f"bbox must be [x, y, width, height] numbers, got {bbox!r}")
    elif not all(math.isfinite(v) for v in bbox):
        report.add(str(path), where, f"bbox {bbox} holds NaN or infinity; expected finite numbers")
    elif bbox[2] <= 0 or bbox[3] <= 0:
        report.add(str(path), where, f"bbox {bbox} has non-positive width or height")
    elif image_id in images:
        width, height = images[image_id]
        x, y, w, h = bbox
        if x < -_BOX_TOLERANCE or y < -_BOX_TOLERANCE or x + w > width + _BOX_TOLERANCE or y + h > height + _BOX_TOLERANCE:
            report.add(str(path), where, f"bbox {bbox} lies outside image {image_id} ({width}x{height})")
    _check_segmentation(path, where, ann.get("segmentation"), images.get(image_id), report)


def _check_segmentation(path: Path, where: str, segmentation: Any, size: tuple | None, report: CheckReport) -> None:
    if segmentation is None:
        report.add(str(path), where, "no 'segmentation' (expected polygons or RLE)")
    elif isinstance(segmentation, list):
        if not segmentation:
            report.add(str(path), where, "segmentation is an empty polygon list")
        for polygon in segmentation:
            if not isinstance(polygon, list) or len(polygon) < 6 or len(polygon) % 2:
                report.add(str(path), where, "polygon must be a flat list of at least 3 (x, y) pairs")
                break
            if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in polygon):
                report.add(str(path), where, "polygon coordinates must be finite numbers (found NaN, inf or text)")
                break
    elif isinstance(segmentation, dict):
        if "counts" not in segmentation or "size" not in segmentation:
            report.add(str(path), where, "RLE segmentation needs 'counts' and 'size'")
        elif size is not None and list(segmentation["size"]) != [size[1], size[0]]:
            report.add(str(path), where, f"RLE size {segmentation['size']} != image [height, width] {[size[1], size[0]]}")
    else:
        report.add(str(path), where, f"segmentation must be polygons (list) or RLE (dict), got {type(segmentation).__name__}")
