"""iNaturalist / Places layouts: readers, class-index rule, synthetic sets, validators, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mae_transfer.data.annotations import AnnotationError, read_inat_json, read_places_list
from mae_transfer.data import check_dataset, make_dataset

KINDS = ["inat2017", "inat2018", "inat2019", "places205", "places365"]


def _inat_json(path: Path, categories: list[int], labels: list[int]) -> Path:
    payload = {
        "images": [{"id": 10 + i, "file_name": f"img/{i}.jpg"} for i in range(len(labels))],
        "annotations": [{"id": i, "image_id": 10 + i, "category_id": c} for i, c in enumerate(labels)],
        "categories": [{"id": c, "name": f"c{c}"} for c in categories],
    }
    path.write_text(json.dumps(payload, indent=1))
    return path


def test_inat_class_index_is_position_in_sorted_category_ids(tmp_path: Path) -> None:
    ann = _inat_json(tmp_path / "train2017.json", categories=[42, 7, 19], labels=[7, 19, 42, 7])
    annotations = read_inat_json(ann)
    assert annotations.classes == ("c7", "c19", "c42")
    assert [s.label for s in annotations.samples] == [0, 1, 2, 0]
    assert annotations.samples[1].source == f"{ann} [image id 11]"


@pytest.mark.parametrize("kind", KINDS)
def test_make_writes_official_layout_that_checks_clean(tmp_path: Path, kind: str) -> None:
    root = make_dataset(kind, tmp_path / kind, seed=3)
    expected_files = {
        "inat2017": ["train2017.json", "val2017.json"],
        "inat2018": ["train2018.json", "val2018.json"],
        "inat2019": ["train2019.json", "val2019.json"],
        "places205": ["train_places205.csv", "val_places205.csv"],
        "places365": ["places365_train_standard.txt", "places365_val.txt", "categories_places365.txt"],
    }[kind]
    assert all((root / name).is_file() for name in expected_files)
    report = check_dataset(kind, root)
    assert report.ok, report.render()
    assert report.counts["train images"] == 64 and report.counts["val images"] == 32


def test_places365_train_paths_are_absolute_style_and_read_relative(tmp_path: Path) -> None:
    root = make_dataset("places365", tmp_path / "p")
    first = (root / "places365_train_standard.txt").read_text().splitlines()[0]
    assert first.startswith("/s/scene_000/") and first.endswith(" 0")
    sample = read_places_list(root / "places365_train_standard.txt", 365)[0]
    assert (root / "data_256" / sample.path).is_file()


@pytest.mark.parametrize(
    ("payload", "where", "fragment"),
    [
        ({"images": [], "annotations": []}, "categories", "missing or not a list"),
        (
            {"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 1, "category_id": 99}],
             "categories": [{"id": 0, "name": "x"}]},
            "annotations[0] (image id 1)",
            "unknown category_id 99",
        ),
        (
            {"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [], "categories": [{"id": 0}]},
            "image id 1",
            "has no annotation",
        ),
        (
            {"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 5, "category_id": 0}],
             "categories": [{"id": 0}]},
            "annotations[0] (image id 5)",
            "not listed in 'images'",
        ),
    ],
)
def test_inat_defects_name_file_and_key(tmp_path: Path, payload: dict, where: str, fragment: str) -> None:
    ann = tmp_path / "val2018.json"
    ann.write_text(json.dumps(payload))
    with pytest.raises(AnnotationError) as caught:
        read_inat_json(ann)
    assert caught.value.file == str(ann) and caught.value.where == where
    assert fragment in str(caught.value) and str(ann) in str(caught.value)


def test_inat_invalid_json_names_line(tmp_path: Path) -> None:
    ann = tmp_path / "train2019.json"
    ann.write_text('{\n  "images": [\n  oops\n]}')
    with pytest.raises(AnnotationError, match=r"train2019\.json \[line 3\]: not valid JSON"):
        read_inat_json(ann)


def test_missing_annotation_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(AnnotationError, match=r"nowhere\.json: annotation file not found"):
        read_inat_json(tmp_path / "nowhere.json")
    with pytest.raises(AnnotationError, match=r"nowhere\.txt: file list not found"):
        read_places_list(tmp_path / "nowhere.txt", 365)


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("a/abbey/1.jpg", "expected 'relative/path.jpg label' (2 fields), found 1"),
        ("a/abbey/1.jpg zero", "label 'zero' is not an integer"),
        ("a/abbey/1.jpg 205", "unknown category 205; expected a label in 0..204"),
        ("a/abbey/1.jpg 3 extra", "found 3"),
    ],
)
def test_places_defects_name_file_and_line(tmp_path: Path, line: str, fragment: str) -> None:
    listing = tmp_path / "val_places205.csv"
    listing.write_text(f"a/abbey/0.jpg 0\n\n{line}\n")
    with pytest.raises(AnnotationError) as caught:
        read_places_list(listing, 205)
    assert caught.value.where == "line 3"
    assert str(caught.value).startswith(f"{listing} [line 3]: ") and fragment in str(caught.value)


def test_check_collects_every_defect_with_file_and_line(tmp_path: Path) -> None:
    root = make_dataset("places365", tmp_path / "p")
    listing = root / "places365_val.txt"
    lines = listing.read_text().splitlines()
    lines[1] = lines[1].split()[0]  # malformed: no label
    lines[4] = lines[4].split()[0] + " 9"  # unknown category (4 classes)
    (root / "val_256" / lines[6].split()[0]).unlink()  # missing image file
    listing.write_text("\n".join(lines) + "\n")
    report = check_dataset("places365", root)
    found = {(Path(p.file).name, p.where): p.message for p in report.problems}
    assert set(found) == {("places365_val.txt", "line 2"), ("places365_val.txt", "line 5"),
                          ("places365_val.txt", "line 7")}
    assert "2 fields" in found[("places365_val.txt", "line 2")]
    assert "unknown category 9" in found[("places365_val.txt", "line 5")]
    assert "not found" in found[("places365_val.txt", "line 7")]


def test_inat_check_reports_missing_image_and_category_mismatch(tmp_path: Path) -> None:
    root = make_dataset("inat2018", tmp_path / "i")
    train = json.loads((root / "train2018.json").read_text())
    (root / train["images"][2]["file_name"]).unlink()
    val = json.loads((root / "val2018.json").read_text())
    val["categories"] = val["categories"][:-1]
    kept = {a["image_id"] for a in val["annotations"] if a["category_id"] != 3}
    val["annotations"] = [a for a in val["annotations"] if a["image_id"] in kept]
    val["images"] = [i for i in val["images"] if i["id"] in kept]
    (root / "val2018.json").write_text(json.dumps(val))
    report = check_dataset("inat2018", root)
    messages = {(Path(p.file).name, p.where) for p in report.problems}
    assert messages == {("train2018.json", f"image id {train['images'][2]['id']}"), ("val2018.json", "categories")}


def test_cli_data_make_and_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mae_transfer.cli import main

    assert main(["data", "make", "inat2017", str(tmp_path / "inat")]) == 0
    assert (tmp_path / "inat" / "train2017.json").is_file()
    assert main(["data", "check", "inat2017", str(tmp_path / "inat"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert report["ok"] and report["counts"]["classes"] == 4
    (tmp_path / "inat" / "val2017.json").write_text("{}")
    assert main(["data", "check", "inat2017", str(tmp_path / "inat")]) == 1


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_inat_damaged_image_names_file_and_image_id(tmp_path: Path, damage: str) -> None:
    root = make_dataset("inat2019", tmp_path / "i")
    train = json.loads((root / "train2019.json").read_text())
    image = root / train["images"][5]["file_name"]
    _truncate(image) if damage == "truncated" else image.write_bytes(b"")
    report = check_dataset("inat2019", root)
    assert [(p.file, p.where) for p in report.problems] == [
        (str(image), f"{root / 'train2019.json'} [image id {train['images'][5]['id']}]")], report.render()
    assert "unreadable" in report.problems[0].message
    assert ("0 bytes" if damage == "empty" else "pixels do not decode") in report.problems[0].message
    assert check_dataset("inat2019", root, quick=True).ok is (damage == "truncated")


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_places_damaged_image_names_file_and_line(tmp_path: Path, damage: str) -> None:
    root = make_dataset("places205", tmp_path / "p")
    listing = root / "val_places205.csv"
    relative = listing.read_text().splitlines()[3].split()[0]
    image = next(p for p in root.rglob("*.jpg") if p.as_posix().endswith(relative.lstrip("/")))
    _truncate(image) if damage == "truncated" else image.write_bytes(b"")
    report = check_dataset("places205", root)
    assert [(p.file, p.where) for p in report.problems] == [(str(image), f"{listing} [line 4]")], report.render()
    assert "unreadable" in report.problems[0].message


def test_places_empty_val_list(tmp_path: Path) -> None:
    root = make_dataset("places365", tmp_path / "p")
    (root / "places365_val.txt").write_text("\n")
    report = check_dataset("places365", root)
    assert [(Path(p.file).name, p.message) for p in report.problems] == [
        ("places365_val.txt", "the val list has no samples; expected 'relative/path.jpg label' lines")]


@pytest.mark.parametrize("kind, name", [("inat2017", "val2017.json"), ("places365", "places365_train_standard.txt"),
                                        ("places365", "categories_places365.txt")])
def test_non_utf8_annotation_file_is_reported_not_raised(tmp_path: Path, kind: str, name: str) -> None:
    root = make_dataset(kind, tmp_path / kind)
    path = root / name
    path.write_bytes(b"\xff\xfe" + path.read_bytes())
    report = check_dataset(kind, root)
    hits = [p for p in report.problems if p.file == str(path)]
    assert hits and hits[0].where == "byte 0" and "not UTF-8 text" in hits[0].message, report.render()


def _escape_root(kind: str, root: Path, outside: Path, form: str) -> tuple[Path, str]:
    """Point one val image of ``kind`` at ``outside`` (a real image beside the root); the file and key it is listed at."""
    if kind.startswith("inat"):
        listing = root / f"val{kind[4:]}.json"
        payload = json.loads(listing.read_text())
        payload["images"][1]["file_name"] = str(outside) if form == "absolute" else f"../{outside.name}"
        listing.write_text(json.dumps(payload))
        return listing, f"image id {payload['images'][1]['id']}"
    from mae_transfer.data.places import layout_of

    layout = layout_of(kind)
    listing = root / layout.val_list
    lines = listing.read_text().splitlines()
    climb = "/".join(".." for _ in Path(layout.val_images).parts)  # out of the image folder, then the root
    lines[1] = f"{climb}/../{outside.name} {lines[1].split()[1]}"
    listing.write_text("\n".join(lines) + "\n")
    return listing, "line 2"


@pytest.mark.parametrize("kind, form", [("inat2017", "absolute"), ("inat2018", "parent"), ("places365", "parent"),
                                        ("places205", "parent")])
def test_image_paths_outside_the_dataset_root_are_defects(tmp_path: Path, kind: str, form: str) -> None:
    root = make_dataset(kind, tmp_path / kind)
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(next(root.rglob("*.jpg")).read_bytes())  # a real, readable image: only its place is wrong
    listing, where = _escape_root(kind, root, outside, form)
    report = check_dataset(kind, root)
    assert [(p.file, p.where) for p in report.problems] == [(str(listing), where)], report.render()
    message = report.problems[0].message
    assert "outside" in message and str(root) in message and "relative" in message, message
