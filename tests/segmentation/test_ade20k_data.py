"""The synthetic ADE20K generator and the ADEChallengeData2016 validator."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mae_transfer.data import ade20k, check_dataset, make_dataset


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset("ade20k", tmp_path_factory.mktemp("ade") / "ADEChallengeData2016",
                        seed=3, num_train=6, num_val=3)


def _copy(root: Path, tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / "ADEChallengeData2016"
    shutil.copytree(root, target)
    return target


def test_layout_and_label_semantics(synthetic_root: Path) -> None:
    images = sorted((synthetic_root / "images" / "training").glob("*.jpg"))
    labels = sorted((synthetic_root / "annotations" / "training").glob("*.png"))
    assert [p.stem for p in images] == [p.stem for p in labels] == [f"ADE_train_{i:08d}" for i in range(1, 7)]
    assert len(list((synthetic_root / "images" / "validation").glob("ADE_val_*.jpg"))) == 3
    values = set()
    for label_path, image_path in zip(labels, images):
        with Image.open(label_path) as label:
            assert label.mode == "L"
            array = np.asarray(label)
        with Image.open(image_path) as image:
            assert image.size == (array.shape[1], array.shape[0])
        values |= set(np.unique(array).tolist())
    assert 0 in values, "seams between regions are unlabeled (0) so reduce_zero_label has work to do"
    assert values <= {0} | {class_id for class_id, *_ in ade20k.SYNTHETIC_CLASSES}
    assert len(values) >= 4


def test_generator_is_deterministic(tmp_path: Path) -> None:
    first = make_dataset("ade20k", tmp_path / "a", seed=7, num_train=2, num_val=1)
    second = make_dataset("ade20k", tmp_path / "b", seed=7, num_train=2, num_val=1)
    other = make_dataset("ade20k", tmp_path / "c", seed=8, num_train=2, num_val=1)
    name = "annotations/training/ADE_train_00000002.png"
    assert (first / name).read_bytes() == (second / name).read_bytes()
    assert (first / name).read_bytes() != (other / name).read_bytes()


def test_synthetic_set_checks_clean_with_count_notes(synthetic_root: Path) -> None:
    report = check_dataset("ade20k", synthetic_root)
    assert report.ok, report.render()
    assert report.counts["training images"] == 6 and report.counts["validation label maps"] == 3
    assert any("20,210" in note for note in report.notes)
    strict = ade20k.check("ade20k", synthetic_root, official_counts=True)
    assert not strict.ok and any("20,210" in p.message for p in strict.problems)


def test_parent_directory_is_accepted(synthetic_root: Path) -> None:
    report = check_dataset("ade20k", synthetic_root.parent)
    assert report.ok and report.counts["training images"] == 6


def test_unmarked_set_with_wrong_counts_is_a_defect(synthetic_root: Path, tmp_path: Path) -> None:
    root = _copy(synthetic_root, tmp_path)
    (root / ade20k.SYNTHETIC_MARKER).unlink()
    report = check_dataset("ade20k", root)
    messages = [str(p) for p in report.problems]
    assert len(messages) == 2 and "2,000" in messages[1], messages


def test_missing_label_is_named(synthetic_root: Path, tmp_path: Path) -> None:
    root = _copy(synthetic_root, tmp_path)
    (root / "annotations" / "training" / "ADE_train_00000004.png").unlink()
    report = check_dataset("ade20k", root)
    assert len(report.problems) == 1
    problem = report.problems[0]
    assert problem.file.endswith("ADE_train_00000004.jpg") and problem.where == "ADE_train_00000004"
    assert "no label map" in problem.message


def test_out_of_range_label_is_named(synthetic_root: Path, tmp_path: Path) -> None:
    root = _copy(synthetic_root, tmp_path)
    path = root / "annotations" / "validation" / "ADE_val_00000002.png"
    array = np.asarray(Image.open(path)).copy()
    array[5, 5] = 200
    Image.fromarray(array, mode="L").save(path)
    report = check_dataset("ade20k", root)
    assert [(Path(p.file).name, p.where) for p in report.problems] == [("ADE_val_00000002.png", "ADE_val_00000002")]
    assert "200" in report.problems[0].message and "0..150" in report.problems[0].message
    assert "ADE_val_00000002" in report.render()


def test_size_mismatch_is_named(synthetic_root: Path, tmp_path: Path) -> None:
    root = _copy(synthetic_root, tmp_path)
    path = root / "annotations" / "training" / "ADE_train_00000001.png"
    Image.open(path).crop((0, 0, 100, 80)).save(path)
    report = check_dataset("ade20k", root)
    assert len(report.problems) == 1
    message = report.problems[0].message
    assert "100x80" in message and "224x160" in message and "ADE_train_00000001.jpg" in message


def test_rgb_label_and_missing_split_are_named(synthetic_root: Path, tmp_path: Path) -> None:
    root = _copy(synthetic_root, tmp_path)
    path = root / "annotations" / "training" / "ADE_train_00000002.png"
    Image.open(path).convert("RGB").save(path)
    import shutil

    shutil.rmtree(root / "images" / "validation")
    report = check_dataset("ade20k", root)
    found = {(Path(p.file).name, p.where): p.message for p in report.problems}
    assert "mode 'RGB'" in found[("ADE_train_00000002.png", "ADE_train_00000002")]
    assert "missing directory" in found[("validation", "")]


def test_marker_records_the_recipe(synthetic_root: Path) -> None:
    marker = json.loads((synthetic_root / ade20k.SYNTHETIC_MARKER).read_text())
    assert marker["seed"] == 3 and marker["counts"] == {"training": 6, "validation": 3}


def test_bad_kind_and_option() -> None:
    with pytest.raises(ValueError, match="ade20k"):
        ade20k.make("coco", Path("/nonexistent"))
    with pytest.raises(TypeError, match="num_images"):
        ade20k.make("ade20k", Path("/nonexistent"), num_images=3)


def test_cli_make_and_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mae_transfer.cli import main

    root = tmp_path / "ADEChallengeData2016"
    assert main(["data", "make", "ade20k", str(root), "--seed", "1"]) == 0
    assert (root / "images" / "training" / "ADE_train_00000001.jpg").is_file()
    assert main(["data", "check", "ade20k", str(root)]) == 0
    assert ": OK" in capsys.readouterr().out
    (root / "annotations" / "validation" / "ADE_val_00000001.png").unlink()
    assert main(["data", "check", "ade20k", str(root), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["problems"][0]["where"] == "ADE_val_00000001"


def test_truncated_image_fails_the_full_decode_and_passes_quick(synthetic_root: Path, tmp_path: Path) -> None:
    root = _copy(synthetic_root, tmp_path)
    image = root / "images" / "validation" / "ADE_val_00000002.jpg"
    data = image.read_bytes()
    image.write_bytes(data[: len(data) // 2])
    report = check_dataset("ade20k", root)
    hits = [p for p in report.problems if p.file == str(image)]
    assert len(hits) == 1 and hits[0].where == "ADE_val_00000002", report.render()
    assert "pixels do not decode" in hits[0].message
    assert check_dataset("ade20k", root, quick=True).ok


def test_an_empty_validation_split_is_a_defect_even_in_a_synthetic_set(synthetic_root: Path, tmp_path: Path) -> None:
    """mmseg would fail much later with an unlabelled "need at least one array to concatenate"."""
    root = _copy(synthetic_root, tmp_path)
    for folder in (root / "images" / "validation", root / "annotations" / "validation"):
        for path in folder.iterdir():
            path.unlink()
    report = check_dataset("ade20k", root)
    assert [(p.file, p.where) for p in report.problems] == [(str(root / "images" / "validation"), "validation")]
    message = report.problems[0].message
    assert "no image/label pairs" in message and "evaluat" in message, message
