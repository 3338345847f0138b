"""The two real image sets that ship inside installed packages: scikit-learn's digits (the probes'
labelled low-label set) and crops of scikit-image's photographs (the demo's pre-training set)."""

from pathlib import Path

import numpy as np
from PIL import Image

from mae_transfer.data import check_dataset, make_dataset
from mae_transfer.data.digits import load_digits, split_indices


def test_digits_are_the_real_scans_split_per_class(tmp_path: Path) -> None:
    root = make_dataset("digits", tmp_path / "a", seed=3, train_per_class=5, val_per_class=3, image_size=32)
    images, labels = load_digits()
    chosen, rest = split_indices(labels, 5, seed=3)
    assert (chosen, rest) == split_indices(labels, 5, seed=3) and chosen != split_indices(labels, 5, seed=4)[0]
    assert not set(chosen) & set(rest) and sorted(labels[chosen].tolist()) == sorted(list(range(10)) * 5)
    report = check_dataset("digits", root)
    assert report.ok, report.render()
    train = sorted(p.relative_to(root / "train").as_posix() for p in (root / "train").rglob("*.png"))
    val = sorted((root / "val").rglob("*.png"))
    assert len(train) == 50 and len(val) == 30 and len(rest) == 1797 - 50
    assert sorted(int(name.split("_")[-1][:5]) for name in train) == chosen
    first = train[0]  # digit_0/train_NNNNN.png: the scan of that index, upsampled
    index = int(first.split("_")[-1].split(".")[0])
    assert labels[index] == 0 and first.startswith("digit_0/")
    pixels = np.asarray(Image.open(root / "train" / first))
    assert pixels.shape == (32, 32, 3) and pixels[..., 0].tolist() == pixels[..., 2].tolist()
    small = np.asarray(Image.fromarray(pixels[..., 0]).resize((8, 8), Image.BILINEAR), dtype=float)
    assert np.corrcoef(small.ravel(), images[index].ravel())[0, 1] > 0.9


def test_photo_crops_hold_out_whole_photographs(tmp_path: Path) -> None:
    root = make_dataset("photos", tmp_path / "photos", seed=0, num_train=20, num_val=8)
    assert check_dataset("photos", root).ok
    train = {p.name for p in (root / "train").iterdir()}
    val = {p.name for p in (root / "val").iterdir()}
    assert val == {"cat", "coffee", "rocket", "motorcycle"} and not train & val and len(train) == 10
    crops = sorted((root / "val").rglob("*.png"))
    assert len(crops) == 8 and len(list((root / "train").rglob("*.png"))) == 20
    image = Image.open(crops[0])
    assert image.size == (64, 64) and image.mode == "RGB" and np.asarray(image).std() > 5  # not a flat colour
