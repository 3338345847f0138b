"""`mae_transfer.data.coco`: the synthetic generator and the COCO layout validator."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from mae_transfer.cli import main as cli_main
from mae_transfer.data import check_dataset, make_dataset
from mae_transfer.data.coco import SYNTHETIC_CATEGORIES, annotation_file


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def small_coco(tmp_path: Path) -> Path:
    return make_dataset("coco", tmp_path / "coco", seed=3, num_train=6, num_val=4, crowd_every=2)


def _edit(root: Path, split: str, change) -> Path:
    path = annotation_file(root, split)
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    return path


def test_layout_and_annotation_kinds(synthetic_coco: Path) -> None:
    for split, count in (("train", 96), ("val", 32)):
        coco = COCO(str(annotation_file(synthetic_coco, split)))
        assert len(coco.imgs) == count
        assert len(list((synthetic_coco / f"{split}2017").glob("*.jpg"))) == count
        assert sorted(coco.cats) == [cid for cid, _, _ in SYNTHETIC_CATEGORIES]
        anns = list(coco.anns.values())
        assert all(a["image_id"] in coco.imgs for a in anns)
        kinds = {("rle" if isinstance(a["segmentation"], dict) else "polygon", a["iscrowd"]) for a in anns}
        assert {("polygon", 0), ("rle", 0), ("rle", 1)} <= kinds
        for ann in anns[:40]:
            mask = coco.annToMask(ann)
            assert mask.sum() == pytest.approx(ann["area"], rel=0.05, abs=3)
            x, y, w, h = ann["bbox"]
            ys, xs = np.nonzero(mask)
            assert (xs.min(), ys.min()) == pytest.approx((x, y), abs=1.0)
            assert (xs.max() + 1, ys.max() + 1) == pytest.approx((x + w, y + h), abs=1.0)


def test_crowd_regions_use_uncompressed_rle(synthetic_coco: Path) -> None:
    data = json.loads(annotation_file(synthetic_coco, "train").read_text())
    crowds = [a for a in data["annotations"] if a["iscrowd"]]
    assert crowds and all(isinstance(a["segmentation"]["counts"], list) for a in crowds)
    rle = mask_utils.frPyObjects(crowds[0]["segmentation"], *crowds[0]["segmentation"]["size"])
    assert mask_utils.area(rle) == crowds[0]["area"]


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    first = make_dataset("coco", tmp_path / "a", seed=7, num_train=4, num_val=2)
    second = make_dataset("coco", tmp_path / "b", seed=7, num_train=4, num_val=2)
    third = make_dataset("coco", tmp_path / "c", seed=8, num_train=4, num_val=2)
    assert _digest(first) == _digest(second)
    assert _digest(first) != _digest(third)


def test_generated_set_passes_check(synthetic_coco: Path) -> None:
    report = check_dataset("coco", synthetic_coco)
    assert report.ok, report.render()
    assert report.counts["train_images"] == 96 and report.counts["val_annotations"] > 32


def test_missing_and_unreadable_images_name_file_and_image(small_coco: Path) -> None:
    images = sorted((small_coco / "val2017").glob("*.jpg"))
    images[0].unlink()
    images[1].write_bytes(b"not a jpeg")
    report = check_dataset("coco", small_coco)
    messages = [str(p) for p in report.problems]
    assert any(images[0].name in m and "missing" in m and "image id" in m for m in messages), messages
    assert any(images[1].name in m and "unreadable" in m for m in messages), messages


@pytest.mark.parametrize(
    ("defect", "expected"),
    [
        (lambda d: d["annotations"][0]["bbox"].__setitem__(0, 500.0), "outside image"),
        (lambda d: d["annotations"][0].__setitem__("category_id", 99), "category_id 99 is not in 'categories'"),
        (lambda d: d["annotations"][0].__setitem__("image_id", 12345), "image_id 12345 is not in 'images'"),
        (lambda d: d["annotations"][0].__setitem__("segmentation", []), "empty polygon list"),
        (lambda d: d["annotations"][0].__setitem__("bbox", [1, 1, 0, 5]), "non-positive width or height"),
    ],
)
def test_annotation_defects_name_file_and_annotation_id(small_coco: Path, defect, expected: str) -> None:
    holder: dict = {}

    def change(data: dict) -> None:
        defect(data)
        holder["id"] = data["annotations"][0]["id"]

    path = _edit(small_coco, "train", change)
    report = check_dataset("coco", small_coco)
    hits = [p for p in report.problems if expected in p.message]
    assert hits, report.render()
    assert hits[0].file == str(path) and hits[0].where == f"annotation id {holder['id']}"
    assert f"annotation id {holder['id']}" in str(hits[0]) and "instances_train2017.json" in str(hits[0])


def test_duplicate_ids_are_reported_once_per_id(small_coco: Path) -> None:
    def change(data: dict) -> None:
        data["annotations"][1]["id"] = data["annotations"][0]["id"]
        data["images"][1]["id"] = data["images"][0]["id"]

    _edit(small_coco, "val", change)
    report = check_dataset("coco", small_coco)
    duplicates = [str(p) for p in report.problems if "duplicate" in p.message]
    assert any("annotation id" in m and "instances_val2017.json" in m for m in duplicates), report.render()
    assert any("duplicate image id" in m for m in duplicates), report.render()


def test_empty_annotation_list_and_missing_file(small_coco: Path) -> None:
    _edit(small_coco, "val", lambda d: d.__setitem__("annotations", []))
    annotation_file(small_coco, "train").unlink()
    report = check_dataset("coco", small_coco)
    rendered = report.render()
    assert "instances_val2017.json [annotations]: the annotations list is empty" in rendered
    assert "instances_train2017.json: annotation file missing" in rendered
    assert not report.ok


def test_cli_make_and_check(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "cli_coco"
    assert cli_main(["data", "make", "coco", str(root), "--seed", "1"]) == 0
    assert annotation_file(root, "val").is_file()
    assert cli_main(["data", "check", "coco", str(root)]) == 0
    _edit(root, "val", lambda d: d["annotations"][0].__setitem__("category_id", 42))
    assert cli_main(["data", "check", "coco", str(root)]) == 1
    assert "category_id 42" in capsys.readouterr().out


def _truncate(path: Path) -> None:
    """Keep the first half of a JPEG: the header still reads, the pixels do not decode."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_image_fails_the_full_decode_and_passes_quick(small_coco: Path) -> None:
    image = sorted((small_coco / "train2017").glob("*.jpg"))[2]
    _truncate(image)
    report = check_dataset("coco", small_coco)
    hits = [p for p in report.problems if p.file == str(image)]
    assert len(hits) == 1 and hits[0].where.startswith("image id ") and "unreadable" in hits[0].message, report.render()
    assert "pixels do not decode" in hits[0].message
    assert check_dataset("coco", small_coco, quick=True).ok  # headers only: today's behaviour, on request


def test_nan_bbox_names_file_and_annotation(small_coco: Path) -> None:
    holder: dict = {}

    def change(data: dict) -> None:
        data["annotations"][1]["bbox"][2] = float("nan")
        holder["id"] = data["annotations"][1]["id"]

    path = _edit(small_coco, "val", change)
    assert "NaN" in path.read_text()  # json.dumps writes a bare NaN, as a careless exporter would
    report = check_dataset("coco", small_coco)
    hits = [p for p in report.problems if "NaN or infinity" in p.message]
    assert [(p.file, p.where) for p in hits] == [(str(path), f"annotation id {holder['id']}")], report.render()


def test_annotation_file_with_a_list_at_the_top_level(small_coco: Path) -> None:
    path = annotation_file(small_coco, "val")
    path.write_text(json.dumps([{"id": 1}]))
    report = check_dataset("coco", small_coco)
    hits = [p for p in report.problems if p.file == str(path)]
    assert len(hits) == 1 and "top level is a JSON list" in hits[0].message, report.render()


def test_non_utf8_annotation_file(small_coco: Path, capsys: pytest.CaptureFixture) -> None:
    path = annotation_file(small_coco, "train")
    path.write_bytes(path.read_bytes().replace(b'"file_name": "', b'"file_name": "\xe9', 1))
    assert cli_main(["data", "check", "coco", str(small_coco)]) == 1
    out = capsys.readouterr().out
    assert f"{path} [byte " in out and "not UTF-8 text" in out


@pytest.mark.parametrize("form", ["absolute", "parent"])
def test_image_file_name_outside_the_dataset_root_is_a_defect(small_coco: Path, form: str) -> None:
    outside = small_coco.parent / "outside.jpg"
    outside.write_bytes(next((small_coco / "val2017").glob("*.jpg")).read_bytes())
    image = {}

    def escape(data: dict) -> None:
        image.update(data["images"][0])
        data["images"][0]["file_name"] = str(outside) if form == "absolute" else "../../outside.jpg"

    path = _edit(small_coco, "val", escape)
    report = check_dataset("coco", small_coco)
    assert [(p.file, p.where) for p in report.problems] == [(str(path), f"image id {image['id']}")], report.render()
    assert "outside" in report.problems[0].message and "relative" in report.problems[0].message
