"""Probes through the real entry point (``python -m mae_transfer.train`` on mmengine's Runner) on
scikit-learn's handwritten digits: k-NN with the shared feature cache (hit on a second cell, a
miss after a change of transform), and 2-process DDP (torchrun, gloo) equal to one process for
k-NN (sharded cache) and the linear sweep."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from training_helpers import REPO, run, subprocess_env

from mae_transfer.data import make_dataset

CONFIG = REPO / "configs" / "smoke" / "digits_probes.py"


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    return make_dataset("digits", tmp_path_factory.mktemp("digits"), train_per_class=10, val_per_class=20)


def options(root: Path, cache: Path, **extra: object) -> dict[str, object]:
    return {"train_dataloader.dataset.data_root": root, "val_dataloader.dataset.data_root": root,
            "probe.cache_root": cache, **extra}


def train(work_dir: Path, opts: dict[str, object], nproc: int = 1) -> dict:
    """Run the probe config; returns probe.json (with metrics.json's metrics under 'file_metrics')."""
    pairs = [f"{key}={value}" for key, value in opts.items()]
    script = ["-m", "mae_transfer.train", str(CONFIG), "--work-dir", str(work_dir)]
    if nproc > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
                   *script, "--launcher", "pytorch"]
    else:
        command = [sys.executable, *script]
    run([*command, "--cfg-options", *pairs], timeout=400)
    probe = json.loads((work_dir / "probe.json").read_text())
    probe["file_metrics"] = json.loads((work_dir / "metrics.json").read_text())["metrics"]
    return probe


KNN = {"probe.protocol": "knn", "probe.knn.ks": "[5,20]"}
SWEEP = {"probe.protocol": "linear-sweep", "probe.linear_sweep.learning_rates": "[0.5,4.0]",
         "probe.linear_sweep.sources": "[cls,avg]", "probe.linear_sweep.blocks": "[1,2]",
         "probe.linear_sweep.epochs": 4}


@pytest.mark.slow
def test_knn_cells_share_the_cache_and_a_changed_transform_misses(digits, tmp_path):
    cache = tmp_path / "features"
    first = train(tmp_path / "a", options(digits, cache, **KNN))
    second = train(tmp_path / "b", options(digits, cache, **KNN))
    assert first["cache"] == {"train": "miss", "val": "miss"}
    assert second["cache"] == {"train": "hit", "val": "hit"}  # no forward pass in the second cell
    assert not any("extracted" in event for event in second["events"])
    assert first["metrics"] == second["metrics"] == {k: v for k, v in second["file_metrics"].items()}
    assert first["metrics"]["knn/k20_top1"] > 25.0  # 10 digits: chance is 10 (a random tiny ViT: ~38)
    assert first["holdout"]["holdout_images"] == 10 and first["holdout"]["fit_images"] == 90
    held = json.loads((tmp_path / "a" / "holdout.json").read_text())
    assert len(held["ids"]) == 10 and held["ids_sha256"] == first["holdout"]["ids_sha256"]
    assert sorted(name.split("/")[1] for name in held["ids"]) == [f"digit_{d}" for d in range(10)]  # one per class
    changed = train(tmp_path / "c", options(digits, cache, **KNN,
                                            **{"val_dataloader.dataset.pipeline.1.crop_pct": 0.875}))
    assert changed["cache"] == {"train": "miss", "val": "miss"}  # the transform is part of the key
    assert len(list(cache.glob("*/manifest.json"))) == 4


@pytest.mark.slow
def test_two_process_ddp_equals_one_process(digits, tmp_path):
    single = {name: train(tmp_path / f"one_{name}", options(digits, tmp_path / f"cache_one_{name}", **extra))
              for name, extra in (("knn", KNN), ("sweep", {**SWEEP, "train_dataloader.batch_size": 16}))}
    double = {name: train(tmp_path / f"two_{name}", options(digits, tmp_path / f"cache_two_{name}", **extra), nproc=2)
              for name, extra in (("knn", KNN), ("sweep", {**SWEEP, "train_dataloader.batch_size": 8}))}
    for name in ("knn", "sweep"):
        assert single[name]["processes"] == 1 and double[name]["processes"] == 2
        assert double[name]["chosen"]["name"] == single[name]["chosen"]["name"], name
        for metric, value in single[name]["metrics"].items():
            assert double[name]["metrics"][metric] == pytest.approx(value, abs=0.07), (name, metric)
        holdout = [p["holdout_top1"] for p in single[name]["points"]]
        assert [p["holdout_top1"] for p in double[name]["points"]] == pytest.approx(holdout, abs=1e-6)
    shards = sorted(p.name for p in (tmp_path / "cache_two_knn").glob("*/shard-*"))
    assert shards == ["shard-000-of-002.pt"] * 2 + ["shard-001-of-002.pt"] * 2  # train and val: a shard per rank
