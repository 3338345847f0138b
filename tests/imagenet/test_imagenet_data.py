"""`data make/check imagenet` and the ImageFolder dataset: layout, real wnids, and every reported defect."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mae_transfer.data.annotations import AnnotationError
from mae_transfer.cli import main
from mae_transfer.classification.imagefolder import ImageFolderDataset
from mae_transfer.data import check_dataset, make_dataset
from mae_transfer.data.imagenet import imagenet_wnids


@pytest.fixture()
def small(tmp_path: Path) -> Path:
    return make_dataset("imagenet", tmp_path / "imagenet", seed=0, num_classes=3, train_per_class=2, val_per_class=1)


def _problems(report) -> dict[str, str]:
    return {problem.file: problem.message for problem in report.problems}


def test_generated_set_uses_real_wnids_and_checks_clean(small: Path) -> None:
    assert sorted(p.name for p in (small / "train").iterdir()) == ["n01440764", "n01443537", "n01484850"]
    assert sorted(p.name for p in (small / "val").iterdir()) == sorted(p.name for p in (small / "train").iterdir())
    report = check_dataset("imagenet", small, num_classes=3)
    assert report.ok, report.render()
    assert report.counts == {"train classes": 3, "train images": 6, "val classes": 3, "val images": 3}


def test_a_subset_checked_as_the_real_set_reports_every_missing_wnid(small: Path) -> None:
    problems = _problems(check_dataset("imagenet", small))
    assert len(problems) == 2 * 997
    assert problems[str(small / "train" / "n15075141")] == "class folder missing: ImageNet-1k has 1000 classes"


def test_full_label_space_checks_clean_as_the_real_set(tmp_path: Path) -> None:
    root = make_dataset("imagenet", tmp_path / "full", num_classes=1000, train_per_class=1, val_per_class=1,
                        image_size=16)
    report = check_dataset("imagenet", root)
    assert report.ok, report.render(limit=5)
    assert report.counts["train classes"] == report.counts["val classes"] == 1000
    assert sorted(p.name for p in (root / "train").iterdir()) == imagenet_wnids()


def test_missing_class_folders_are_reported_with_their_path(small: Path) -> None:
    shutil.rmtree(small / "val" / "n01443537")
    shutil.copytree(small / "train" / "n01484850", small / "train" / "n01491361")
    problems = _problems(check_dataset("imagenet", small, num_classes=3))
    assert problems[str(small / "val" / "n01443537")] == "class folder missing (present in train/)"
    assert problems[str(small / "val" / "n01491361")] == "class folder missing (present in train/)"
    assert problems[str(small / "train")] == "4 class folders, expected 3"


def test_unreadable_images_are_reported_with_their_path(small: Path) -> None:
    garbage = small / "train" / "n01440764" / "broken.JPEG"
    garbage.write_bytes(b"not a jpeg")
    victim = next((small / "val" / "n01443537").iterdir())
    victim.write_bytes(victim.read_bytes()[: len(victim.read_bytes()) // 2])  # truncated: decodes only in part
    problems = _problems(check_dataset("imagenet", small, num_classes=3))
    assert problems[str(garbage)].startswith("image unreadable: cannot identify image file")
    assert "the pixels do not decode" in problems[str(victim)]
    quick = _problems(check_dataset("imagenet", small, num_classes=3, quick=True))
    assert str(garbage) in quick and str(victim) not in quick  # headers only: the truncated file passes


def test_empty_classes_and_a_flat_val_set_are_reported(small: Path) -> None:
    for image in (small / "train" / "n01484850").iterdir():
        image.unlink()
    loose = next((small / "val" / "n01440764").iterdir())
    shutil.copy(loose, small / "val" / "ILSVRC2012_val_00000001.JPEG")
    problems = _problems(check_dataset("imagenet", small, num_classes=3))
    assert problems[str(small / "train" / "n01484850")] == ("class folder without images (ImageFolder refuses "
                                                            "empty classes)")
    assert problems[str(small / "val")].startswith("1 image(s) directly in val/, outside class folders")
    assert not (small / "missing").exists()
    assert _problems(check_dataset("imagenet", small / "missing", num_classes=None)) == {
        str(small / "missing" / "train"): "split folder not found; expected one sub-folder per class",
        str(small / "missing" / "val"): "split folder not found; expected one sub-folder per class",
    }


def test_cli_make_and_check(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "imagenet"
    assert main(["data", "make", "imagenet", str(root), "--num-classes", "2"]) == 0
    assert main(["data", "check", "imagenet", str(root), "--num-classes", "2"]) == 0
    capsys.readouterr()
    assert main(["data", "check", "imagenet", str(root)]) == 1  # as the real set: 998 missing wnids per split
    assert "1996 problem(s)" in capsys.readouterr().out
    assert main(["data", "make", "coco", str(tmp_path / "coco"), "--num-classes", "2"]) == 2
    assert "--num-classes does not apply to coco" in capsys.readouterr().err


def test_imagefolder_dataset_labels_classes_in_sorted_order(small: Path) -> None:
    dataset = ImageFolderDataset(data_root=str(small), data_prefix=dict(img_path="val"), num_classes=3)
    assert dataset.metainfo["classes"] == ("n01440764", "n01443537", "n01484850")
    assert [(Path(item["img_path"]).parent.name, item["gt_label"]) for item in dataset] == [
        ("n01440764", 0), ("n01443537", 1), ("n01484850", 2)]


def test_imagefolder_dataset_refuses_bad_layouts_naming_the_folder(small: Path) -> None:
    with pytest.raises(AnnotationError, match=r"train: 3 class folders; the config expects num_classes=1000"):
        ImageFolderDataset(data_root=str(small), data_prefix=dict(img_path="train"), num_classes=1000)
    for image in (small / "val" / "n01443537").iterdir():
        image.unlink()
    with pytest.raises(AnnotationError, match=r"val \[n01443537\]: 1 class folder\(s\) without images"):
        ImageFolderDataset(data_root=str(small), data_prefix=dict(img_path="val"))
    with pytest.raises(AnnotationError, match=r"nowhere: split folder not found"):
        ImageFolderDataset(data_root=str(small), data_prefix=dict(img_path="nowhere"))
