"""One probe run: hold out part of train, score every grid point on it, choose, then evaluate on val.

The order is fixed and recorded in ``ProbeResult.events``:

1. split train into fit / hold-out (:func:`~mae_transfer.probes.holdout.split_holdout`);
2. train (or, for k-NN, index) every grid point on the fit part; score every point on the hold-out;
3. choose the point with the best hold-out top-1 (ties: the first in grid order); the selection
   is final and the val gate opens (:class:`~mae_transfer.probes.holdout.ValGate`; any val
   read before raises);
4. with ``refit``, retrain the chosen point on all of train (k-NN: the bank holds all of train);
5. evaluate the chosen point on val, once.

Val metrics, in percent: ``knn/k{k}_top1`` / ``_top5`` for every k of the one search (k = 20 is
the headline: a fixed protocol point, never selected on val) and ``knn/selected_top1`` (the k
chosen on the hold-out); ``linear_sweep/chosen_top1`` / ``_top5``; ``attentive/chosen_top1`` /
``_top5``. None ends in ``/top1``, so they never read as a fine-tuning ``top1``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch import nn
from torch.utils.data import Dataset

from mae_transfer.probes.cache import CachedFeatures, FeatureCache, FeatureKey
from mae_transfer.probes.features import FrozenBackbone, check_source, feature_dim, knn_feature
from mae_transfer.probes.heads import AttentiveGrid, HeadPoint, LinearSweep, cosine_factor, warmup_cosine_factor
from mae_transfer.probes.holdout import GatedDataset, HoldoutSplit, ValGate, split_holdout
from mae_transfer.probes.knn import knn_classify, normalize_rows_
from mae_transfer.probes.loops import (
    Progress,
    all_reduce_sum,
    barrier,
    broadcast_object,
    dist_info,
    extract_shard,
    fit_heads,
    score_heads,
)
from mae_transfer.probes.settings import ProbeConfigError, ProbeSettings

logger = logging.getLogger(__name__)


@dataclass
class ProbeData:
    """What a probe reads.

    Attributes:
        train: the training images with the training augmentation (items: mmengine's packed dict
            or an (image, label) pair).
        train_plain: the same images in the same order with the evaluation transform.
        val: the evaluation images with the evaluation transform.
        train_labels / train_ids: label and id (path) of every training image, without decoding it.
        num_classes: K.
        collate: the batch collate function (default torch's ``default_collate``).
        cache_key: for the feature cache: ``weights``, ``backbone``, ``resolution``, ``transform``
            and ``datasets`` (split name -> description); None: no cache key can be formed.
    """

    train: Dataset
    train_plain: Dataset
    val: Dataset
    train_labels: Sequence[int]
    train_ids: Sequence[str]
    num_classes: int
    collate: Callable | None = None
    cache_key: dict[str, Any] | None = None


@dataclass
class ProbeResult:
    """A probe's outcome (``probe.json`` in the run's work dir; its metrics in percent)."""

    protocol: str
    metrics: dict[str, float]
    grid: dict[str, Any]
    points: list[dict[str, Any]]
    chosen: dict[str, Any]
    holdout: dict[str, Any]
    refit: bool
    val_images: int
    processes: int
    cache: dict[str, str] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    seconds: float = 0.0
    holdout_ids: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field but the hold-out ids (``holdout`` has their digest)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "holdout_ids"}


def _percent(hits: float, count: int) -> float:
    return 100.0 * hits / count if count else 0.0


def _best(points: list[dict[str, Any]]) -> int:
    """Index of the best hold-out top-1; the first in grid order on ties."""
    scores = [point["holdout_top1"] for point in points]
    return scores.index(max(scores))


class _Run:
    """State shared by one run's steps."""

    def __init__(self, settings: ProbeSettings, backbone: nn.Module, data: ProbeData, device: torch.device,
                 cache: FeatureCache | None, progress: Progress | None) -> None:
        self.settings = settings
        self.backbone = backbone.to(device)
        self.data = data
        self.device = device
        self.cache = cache
        self.progress = progress
        self.events: list[str] = []
        self.cache_use: dict[str, str] = {}
        self.gate = ValGate()
        self.val = GatedDataset(data.val, self.gate)
        self.split: HoldoutSplit = split_holdout(data.train_labels, data.train_ids, settings.holdout)
        self.events.append(f"holdout: {len(self.split.holdout)} of {len(data.train_labels)} train images "
                           f"(sha256 {self.split.digest[:12]})")

    def select(self, points: list[dict[str, Any]]) -> int:
        index = _best(points)
        self.events.append(f"selection final: {points[index]['name']}")
        self.gate.open(points[index])
        return index

    def result(self, metrics: dict[str, float], points: list[dict[str, Any]], chosen: dict[str, Any],
               refit: bool, start: float) -> ProbeResult:
        return ProbeResult(protocol=self.settings.protocol, metrics=metrics, grid=self.settings.grid_description(),
                           points=points, chosen=chosen, holdout=self.split.summary(), refit=refit,
                           val_images=len(self.data.val), processes=dist_info()[1], cache=self.cache_use,
                           events=self.events, seconds=time.perf_counter() - start,
                           holdout_ids=list(self.split.holdout_ids))

    # --- k-NN ---------------------------------------------------------------------------------
    def features(self, split: str, dataset: Dataset, frozen: FrozenBackbone, source: str) -> CachedFeatures:
        """Features of a whole split: from the cache, or extracted in shards by every rank and cached."""
        dim = feature_dim(frozen.embed_dim, source, 1)
        if split == "val":
            self.gate.check("feature cache read of val")
        key = self._key(split, len(dataset), source, dim)
        if key is None or self.cache is None:
            raise ProbeConfigError("probe: k-NN reads its features through the feature cache; give a cache root "
                                   "and the data's cache key")
        found = self.cache.lookup(key)
        if found is not None:
            self.cache_use[split] = "hit"
            self.events.append(f"{split} features: cache hit {key.digest[:12]}")
            return found
        settings = self.settings
        indices, rows, labels = extract_shard(frozen, dataset, source, 1, dim, batch_size=settings.eval_batch_size,
                                              device=self.device, num_workers=settings.num_workers,
                                              collate=self.data.collate)
        self.events.append(f"{split} features: extracted")
        token = broadcast_object(uuid.uuid4().hex[:12])
        rank, world = dist_info()
        self.cache.write_shard(key, token, rank, world, indices, rows, labels)
        barrier()
        if rank == 0:
            self.cache.commit(key, token, world)
        barrier()
        self.cache_use[split] = "miss"
        return self.cache.lookup(key)

    def _key(self, split: str, count: int, source: str, dim: int) -> FeatureKey | None:
        base = self.data.cache_key
        if base is None:
            return None
        return FeatureKey(weights=base["weights"], backbone=base["backbone"], dataset=base["datasets"][split],
                          split=split, resolution=int(base["resolution"]), transform=base["transform"],
                          source=f"{source}@last1", num_samples=count, dim=dim)

    def knn_hits(self, bank: torch.Tensor, bank_labels: torch.Tensor, queries: torch.Tensor,
                 labels: torch.Tensor) -> dict[int, tuple[float, float]]:
        """Top-1 / top-5 hit counts per k, queries shared out over ranks and summed."""
        knn = self.settings.knn
        rank, world = dist_info()
        predictions = knn_classify(bank.to(self.device), bank_labels, queries[rank::world], knn.ks, knn.temperature,
                                   self.data.num_classes, knn.query_chunk, knn.bank_chunk)
        counts = predictions.accuracy(labels[rank::world])
        totals = all_reduce_sum(torch.tensor([counts[k] for k in knn.ks], dtype=torch.float64))
        return {k: (float(totals[i, 0]), float(totals[i, 1])) for i, k in enumerate(knn.ks)}

    def run_knn(self) -> ProbeResult:
        start = time.perf_counter()
        knn = self.settings.knn
        feature = knn_feature(self.backbone, knn.feature)
        check_source(self.backbone, feature, 1, "probe.knn.feature")
        if max(knn.ks) > len(self.split.fit):
            raise ProbeConfigError(f"probe.knn.ks: k={max(knn.ks)} exceeds the {len(self.split.fit)} training images "
                                   f"of the k-NN bank (train minus the hold-out)")
        frozen = FrozenBackbone(self.backbone, 1, self.settings.amp)
        self.events.append(f"k-NN feature: {feature} (probe.knn.feature {knn.feature})")
        train = self.features("train", self.data.train_plain, frozen, feature)
        normalize_rows_(train.features)
        fit, held = torch.tensor(self.split.fit), torch.tensor(self.split.holdout)
        hits = self.knn_hits(train.features[fit], train.labels[fit], train.features[held], train.labels[held])
        points = [{"name": f"k{k}", "k": k, "holdout_top1": _percent(hits[k][0], len(held)),
                   "holdout_top5": _percent(hits[k][1], len(held))} for k in knn.ks]
        chosen = points[self.select(points)]
        val = self.features("val", self.val, frozen, feature)
        normalize_rows_(val.features)
        bank = train if self.settings.refit else CachedFeatures(train.features[fit], train.labels[fit])
        hits = self.knn_hits(bank.features, bank.labels, val.features, val.labels)
        count = len(val.labels)
        metrics = {}
        for k in knn.ks:
            metrics[f"knn/k{k}_top1"] = _percent(hits[k][0], count)
            metrics[f"knn/k{k}_top5"] = _percent(hits[k][1], count)
        metrics["knn/selected_top1"] = metrics[f"knn/k{chosen['k']}_top1"]
        metrics["knn/selected_top5"] = metrics[f"knn/k{chosen['k']}_top5"]
        self.events.append(f"val evaluated: {count} images")
        return self.result(metrics, points, chosen, self.settings.refit, start)

    # --- trained heads ------------------------------------------------------------------------
    def run_heads(self) -> ProbeResult:
        start = time.perf_counter()
        settings, data = self.settings, self.data
        sweep = settings.protocol == "linear-sweep"
        if sweep:
            grid_settings = settings.linear_sweep
            points = [HeadPoint(source, blocks, lr) for source in grid_settings.sources
                      for blocks in grid_settings.blocks for lr in grid_settings.learning_rates]
            for point in points:
                check_source(self.backbone, point.source, point.blocks, "probe.linear_sweep")
        else:
            grid_settings = settings.attentive
            points = [HeadPoint("patch", 1, lr, wd) for lr in grid_settings.learning_rates
                      for wd in grid_settings.weight_decays]
        grid = self.build(points)
        self.train_grid(grid, self.split.fit, "grid")
        frozen = FrozenBackbone(self.backbone, grid.max_blocks, settings.amp)
        top1, top5, count = score_heads(grid, frozen, data.train_plain, self.split.holdout,
                                        batch_size=settings.eval_batch_size, device=self.device,
                                        num_workers=settings.num_workers, collate=data.collate)
        scored = [{**point.to_json(), "holdout_top1": _percent(float(top1[i]), count),
                   "holdout_top5": _percent(float(top5[i]), count)} for i, point in enumerate(points)]
        index = self.select(scored)
        if settings.refit:
            final = self.build([points[index]])
            self.train_grid(final, range(len(data.train_labels)), "refit")
        else:
            final = grid.extract(index)
        frozen = FrozenBackbone(self.backbone, final.max_blocks, settings.amp)
        top1, top5, count = score_heads(final, frozen, self.val, range(len(self.val)),
                                        batch_size=settings.eval_batch_size, device=self.device,
                                        num_workers=settings.num_workers, collate=data.collate)
        self.events.append(f"val evaluated: {count} images")
        prefix = "linear_sweep" if sweep else "attentive"
        metrics = {f"{prefix}/chosen_top1": _percent(float(top1[0]), count),
                   f"{prefix}/chosen_top5": _percent(float(top5[0]), count)}
        return self.result(metrics, scored, scored[index], settings.refit, start)

    def build(self, points: list[HeadPoint]) -> nn.Module:
        kind = LinearSweep if self.settings.protocol == "linear-sweep" else AttentiveGrid
        return kind(points, int(self.backbone.embed_dim), self.data.num_classes,
                    int(self.backbone.num_prefix_tokens), self.settings.seed).to(self.device)

    def train_grid(self, grid: nn.Module, indices: Sequence[int], what: str) -> None:
        settings = self.settings
        world = dist_info()[1]
        if isinstance(grid, LinearSweep):
            epochs = settings.linear_sweep.epochs
            optimizer = grid.make_optimizer(settings.batch_size, world, settings.linear_sweep.momentum)
            schedule = cosine_factor
        else:
            epochs = settings.attentive.epochs
            optimizer = grid.make_optimizer(settings.batch_size, world, settings.attentive.betas)
            warmup_fraction = settings.attentive.warmup_fraction
            steps = len(indices) // (settings.batch_size * world)
            warmup = int(warmup_fraction * epochs * steps)
            schedule = lambda iteration, total: warmup_cosine_factor(iteration, total, warmup)  # noqa: E731
        frozen = FrozenBackbone(self.backbone, grid.max_blocks, settings.amp)
        fit_heads(grid, frozen, self.data.train, list(indices), epochs=epochs, batch_size=settings.batch_size,
                  optimizer=optimizer, schedule=schedule, device=self.device, seed=settings.seed,
                  num_workers=settings.num_workers, collate=self.data.collate, progress=self.progress,
                  what=f"{settings.protocol} {what} ({len(grid.points)} heads)")
        self.events.append(f"trained {what}: {len(grid.points)} head(s) on {len(indices)} images")


def run_probe(settings: ProbeSettings, backbone: nn.Module, data: ProbeData, *, device: torch.device | str = "cpu",
              cache: FeatureCache | None = None, progress: Progress | None = None) -> ProbeResult:
    """Run ``settings.protocol`` on a frozen ``backbone`` (see the module docstring for the order).

    Raises:
        ProbeConfigError: a setting that does not fit the data (k larger than the bank, a batch
            larger than the training images, ...), naming its key.
    """
    run = _Run(settings, backbone, data, torch.device(device), cache, progress)
    result = run.run_knn() if settings.protocol == "knn" else run.run_heads()
    logger.info("probe %s: %s (chosen %s)", settings.protocol, json.dumps(result.metrics), result.chosen["name"])
    return result
