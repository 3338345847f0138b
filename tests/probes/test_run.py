"""One probe run end to end (pure torch): selection on the hold-out before any val read, the
feature cache hit / refused, and the refusals of what a backbone or the data cannot give."""

import pytest
import torch
from probe_helpers import cache_key, pattern_data

from mae_transfer.models import build_vit
from mae_transfer.probes import FeatureCache, FeatureCacheError, ProbeConfigError, ProbeSettings, run_probe
from mae_transfer.probes.cache import FeatureKey, read_entry, shard_name
from mae_transfer.probes.features import FeatureSourceError
from mae_transfer.probes.run import _Run

SWEEP = {"protocol": "linear-sweep", "batch_size": 16, "eval_batch_size": 32,
         "linear_sweep": {"learning_rates": [0.01, 1.0, 8.0], "sources": ["cls", "avg"], "blocks": [1, 2],
                          "epochs": 3}}


@pytest.fixture(scope="module")
def sweep_run(backbone):
    """A linear sweep whose every image read and selection is logged in one timeline."""
    log: list = []
    original = _Run.select

    def select(self, points):
        index = original(self, points)
        log.append(("selected", points[index]["name"]))
        return index

    _Run.select = select
    try:
        data = pattern_data(log=log)
        result = run_probe(ProbeSettings.from_config(SWEEP), backbone, data)
    finally:
        _Run.select = original
    return result, log, data


def test_the_chosen_point_is_the_holdout_best(sweep_run):
    result, _, _ = sweep_run
    assert len(result.points) == 12 and result.grid["learning_rates"] == [0.01, 1.0, 8.0]
    scores = [point["holdout_top1"] for point in result.points]
    assert result.chosen == result.points[scores.index(max(scores))]
    assert result.metrics["linear_sweep/chosen_top1"] > 50.0  # 4 classes: chance is 25
    assert result.holdout["holdout_images"] == 8 and len(result.holdout["ids_sha256"]) == 64
    assert result.events[-1] == "val evaluated: 32 images" and result.refit


def test_val_is_read_only_after_the_selection_and_heads_never_train_on_the_holdout(sweep_run):
    result, log, data = sweep_run
    selected = log.index(("selected", result.chosen["name"]))
    before, after = log[:selected], log[selected + 1:]
    assert not [read for read in before if read[0] == "val"]
    assert len([read for read in after if read[0] == "val"]) == 32
    fit_reads = {index for name, index in before if name == "train"}
    scored = {index for name, index in before if name == "train_plain"}
    holdout = set(range(len(data.train_labels))) - fit_reads
    assert len(holdout) == 8 and scored == holdout  # every hold-out image scored, none trained on
    assert {index for name, index in after if name == "train"} == set(range(80))  # the refit reads all of train


def test_knn_cache_hit_then_refused_after_a_change(backbone, tmp_path):
    cache = FeatureCache(tmp_path / "features")
    settings = ProbeSettings.from_config({"protocol": "knn", "eval_batch_size": 32, "knn": {"ks": [1, 5, 20]}})
    calls = []
    original = backbone.forward_last_blocks
    backbone.forward_last_blocks = lambda x, n: calls.append(len(x)) or original(x, n)
    try:
        first = run_probe(settings, backbone, pattern_data(cache_key=cache_key()), cache=cache)
        extracted = sum(calls)
        second = run_probe(settings, backbone, pattern_data(cache_key=cache_key()), cache=cache)
        assert sum(calls) == extracted == 80 + 32  # the second run did no forward pass
        changed = run_probe(settings, backbone, pattern_data(cache_key=cache_key(transform="resize36")), cache=cache)
        other_weights = run_probe(settings, backbone, pattern_data(cache_key=cache_key(weights="w1")), cache=cache)
        assert sum(calls) == extracted * 3  # both changes extract afresh
    finally:
        del backbone.forward_last_blocks
    assert first.cache == {"train": "miss", "val": "miss"} and second.cache == {"train": "hit", "val": "hit"}
    assert changed.cache == other_weights.cache == {"train": "miss", "val": "miss"}
    assert first.metrics == second.metrics and set(first.metrics) >= {"knn/k20_top1", "knn/selected_top1", "knn/k1_top5"}
    assert first.chosen["name"] in {"k1", "k5", "k20"}
    # the old entry read for the changed key: refused, naming the part that differs
    old = FeatureKey(weights="w0", backbone="vit_tiny_patch16/d4", dataset="patterns/seed1", split="train",
                     resolution=32, transform="resize32", source="cls@last1", num_samples=80, dim=192)
    assert cache.lookup(old) is not None
    new = FeatureKey(**{**old.__dict__, "transform": "resize36"})
    with pytest.raises(FeatureCacheError, match=r"transform: entry has 'resize32', this run asks for 'resize36'"):
        read_entry(cache.entry(old), new)
    shard = cache.entry(old) / shard_name(0, 1)
    payload = torch.load(shard, weights_only=True)
    torch.save({**payload, "features": payload["features"][:, :96]}, shard)
    with pytest.raises(FeatureCacheError, match=r"features \(80, 96\) for 80 indices; key dim=192"):
        cache.lookup(old)


def test_knn_refuses_k_above_the_bank_and_cls_without_a_cls_token(backbone, tmp_path):
    settings = ProbeSettings.from_config({"protocol": "knn", "knn": {"ks": [20, 100]}})
    with pytest.raises(ProbeConfigError, match=r"probe\.knn\.ks: k=100 exceeds the 72 training images"):
        run_probe(settings, backbone, pattern_data(cache_key=cache_key()), cache=FeatureCache(tmp_path))
    windowed = build_vit("vit_tiny_patch16", depth=2, img_size=32, window=dict(size=2, global_blocks=(1,)))
    assert windowed.num_prefix_tokens == 0
    with pytest.raises(FeatureSourceError, match=r"probe\.knn\.feature: feature source 'cls' needs a cls token"):
        run_probe(ProbeSettings.from_config({"protocol": "knn", "knn": {"ks": [5], "feature": "cls"}}), windowed,
                  pattern_data(cache_key=cache_key()), cache=FeatureCache(tmp_path))
    average = run_probe(ProbeSettings.from_config({"protocol": "knn", "knn": {"ks": [5]}}), windowed,  # auto: avg
                        pattern_data(cache_key=cache_key(backbone="windowed")), cache=FeatureCache(tmp_path))
    assert 0 <= average.metrics["knn/k5_top1"] <= 100 and "k-NN feature: avg (probe.knn.feature auto)" in average.events


def test_attentive_probe_learns_and_records_its_grid(backbone):
    settings = ProbeSettings.from_config({"protocol": "attentive", "batch_size": 16, "refit": False,
                                          "attentive": {"learning_rates": [1e-3, 1e-1], "weight_decays": [0.0, 0.05],
                                                        "epochs": 6}})
    result = run_probe(settings, backbone, pattern_data())
    assert [point["name"] for point in result.points] == [
        "attentive/lr0.001/wd0", "attentive/lr0.001/wd0.05", "attentive/lr0.1/wd0", "attentive/lr0.1/wd0.05"]
    assert result.grid["weight_decays"] == [0.0, 0.05] and not result.refit
    assert result.metrics["attentive/chosen_top1"] > 50.0
