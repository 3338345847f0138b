"""Content-addressed cache of frozen features, shared by every cell that needs the same ones.

An entry is the features of one dataset split under one key: the digest of the backbone's
weights as loaded (and its constructor options), the dataset and split (with the digest of its
sample ids), the input resolution, the evaluation transform and the feature source. The entry's
folder is ``ROOT/<sha256 of the key>``; it holds ``key.json`` (the key itself), one shard per
process that extracted it (``shard-R-of-W.pt``: sample indices, features, labels) and
``manifest.json`` (written last: an entry without it is incomplete and ignored).

Writing: each DDP rank extracts the samples ``rank, rank + world, ...`` and writes its shard into
``ROOT/<digest>.partial-<token>``; rank 0 checks the shards, writes the manifest and renames the
folder into place (a concurrent writer of the same entry loses the race harmlessly). Reading:
every shard is loaded (``weights_only``), checked against the manifest and key, and the rows are
put back in sample order. A folder whose ``key.json`` differs from the asked key, or whose shapes
do not match the manifest, is refused with an error naming the key part and both values.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch import nn

from mae_transfer.records import atomic_write_json, publish_folder

logger = logging.getLogger(__name__)

KEY_NAME = "key.json"
MANIFEST_NAME = "manifest.json"


class FeatureCacheError(RuntimeError):
    """A cache entry does not match the key it was read for, or is damaged; names the entry and the key."""


def canonical(value: object) -> str:
    """Canonical JSON text (sorted keys, no spaces) of a key part."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def weights_digest(module: nn.Module) -> str:
    """sha256 over every state-dict entry of ``module`` (name, dtype, shape, bytes), in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class FeatureKey:
    """What a cached set of features depends on; every field is compared on read.

    Attributes:
        weights: :func:`weights_digest` of the backbone as loaded.
        backbone: canonical JSON of the backbone's constructor options (arch, overrides).
        dataset: canonical JSON of the dataset (type, root, annotation file, sample-id digest).
        split: ``train`` or ``val``.
        resolution: input side in pixels.
        transform: canonical JSON of the evaluation pipeline.
        source: the feature source, e.g. ``cls@last1``.
        num_samples: rows of the split.
        dim: feature width.
    """

    weights: str
    backbone: str
    dataset: str
    split: str
    resolution: int
    transform: str
    source: str
    num_samples: int
    dim: int

    @property
    def digest(self) -> str:
        """sha256 of the key's canonical JSON: the entry's folder name."""
        return hashlib.sha256(canonical(asdict(self)).encode()).hexdigest()

    def differences(self, stored: dict) -> list[str]:
        """``part: stored != asked`` for every key part that differs from ``stored``."""
        out = []
        for item in fields(self):
            asked, found = getattr(self, item.name), stored.get(item.name)
            if asked != found:
                out.append(f"{item.name}: entry has {_short(found)}, this run asks for {_short(asked)}")
        out.extend(f"{name}: unexpected key part in the entry" for name in sorted(set(stored) - set(asdict(self))))
        return out


def _short(value: object, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...'"


@dataclass
class CachedFeatures:
    """Features of a whole split in sample order: (N, D) float32 and labels (N,)."""

    features: torch.Tensor
    labels: torch.Tensor


class FeatureCache:
    """The cache under ``root`` (created on first write)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def entry(self, key: FeatureKey) -> Path:
        """The entry folder of ``key``."""
        return self.root / key.digest

    def lookup(self, key: FeatureKey) -> CachedFeatures | None:
        """The entry's features, or None when there is no complete entry.

        Raises:
            FeatureCacheError: the entry exists but its key or shapes do not match.
        """
        folder = self.entry(key)
        if not (folder / MANIFEST_NAME).is_file():
            return None
        return read_entry(folder, key)

    def partial(self, key: FeatureKey, token: str) -> Path:
        """The folder ranks write their shards into before the entry is committed."""
        return self.root / f"{key.digest}.partial-{token}"

    def write_shard(self, key: FeatureKey, token: str, rank: int, world: int, indices: torch.Tensor,
                    features: torch.Tensor, labels: torch.Tensor) -> Path:
        """One rank's rows (sample indices, features (n, D), labels) into the partial folder."""
        if features.ndim != 2 or features.shape[1] != key.dim or len(indices) != len(features) != len(labels):
            raise FeatureCacheError(f"feature cache {key.source}: shard of rank {rank} has features "
                                    f"{tuple(features.shape)}, {len(indices)} indices, {len(labels)} labels; "
                                    f"expected (n, {key.dim}) and n of each")
        folder = self.partial(key, token)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / shard_name(rank, world)
        torch.save({"indices": indices.cpu().long(), "features": features.cpu().float().contiguous(),
                    "labels": labels.cpu().long()}, path)
        return path

    def commit(self, key: FeatureKey, token: str, world: int) -> Path:
        """Rank 0, after every shard is written: check them, write key and manifest, move into place."""
        folder = self.partial(key, token)
        atomic_write_json(folder / KEY_NAME, asdict(key))
        manifest = {"num_samples": key.num_samples, "dim": key.dim, "world": world,
                    "shards": [shard_name(rank, world) for rank in range(world)]}
        atomic_write_json(folder / MANIFEST_NAME, manifest)
        read_entry(folder, key)  # a damaged shard fails here, before anything is published
        final = self.entry(key)
        if final.exists() and not (final / MANIFEST_NAME).is_file():
            shutil.rmtree(final, ignore_errors=True)  # an abandoned incomplete entry
        try:
            publish_folder(folder, final)
        except OSError:
            if not (final / MANIFEST_NAME).is_file():
                raise
            shutil.rmtree(folder, ignore_errors=True)  # another run committed the same entry first
        logger.info("feature cache: wrote %s (%s, %d x %d)", final, key.source, key.num_samples, key.dim)
        return final


def shard_name(rank: int, world: int) -> str:
    """``shard-R-of-W.pt``."""
    return f"shard-{rank:03d}-of-{world:03d}.pt"


def read_entry(folder: Path, key: FeatureKey) -> CachedFeatures:
    """Every shard of an entry, checked against ``key`` and the manifest, rows in sample order.

    Raises:
        FeatureCacheError: naming the entry and the key part or shape that does not match.
    """
    where = f"feature cache entry {folder}"
    try:
        stored = json.loads((folder / KEY_NAME).read_text())
        manifest = json.loads((folder / MANIFEST_NAME).read_text())
    except (OSError, ValueError) as error:
        raise FeatureCacheError(f"{where}: unreadable {KEY_NAME} or {MANIFEST_NAME}: {error}") from error
    differences = key.differences(stored) if isinstance(stored, dict) else [f"{KEY_NAME} is not a JSON object"]
    if differences:
        raise FeatureCacheError(f"{where}: refused, its key differs from this run's: " + "; ".join(differences))
    if manifest.get("num_samples") != key.num_samples or manifest.get("dim") != key.dim:
        raise FeatureCacheError(f"{where}: {MANIFEST_NAME} says {manifest.get('num_samples')} x {manifest.get('dim')}"
                                f", the key (source {key.source}) expects {key.num_samples} x {key.dim}")
    features = torch.empty(key.num_samples, key.dim)
    labels = torch.full((key.num_samples,), -1, dtype=torch.long)
    seen = torch.zeros(key.num_samples, dtype=torch.bool)
    for name in manifest.get("shards", []):
        try:
            shard = torch.load(folder / name, map_location="cpu", weights_only=True)
            indices, rows, shard_labels = shard["indices"], shard["features"], shard["labels"]
        except (OSError, RuntimeError, KeyError, TypeError, EOFError) as error:
            raise FeatureCacheError(f"{where}: shard {name} is unreadable ({error})") from error
        if rows.ndim != 2 or rows.shape[1] != key.dim or not len(indices) == len(rows) == len(shard_labels):
            raise FeatureCacheError(f"{where}: shard {name} has features {tuple(rows.shape)} for {len(indices)} "
                                    f"indices; key dim={key.dim} (source {key.source})")
        if len(indices) and (int(indices.min()) < 0 or int(indices.max()) >= key.num_samples):
            raise FeatureCacheError(f"{where}: shard {name} has sample indices outside [0, {key.num_samples}) "
                                    f"(key num_samples)")
        if seen[indices].any():
            raise FeatureCacheError(f"{where}: shard {name} repeats sample indices of another shard")
        seen[indices] = True
        features[indices] = rows.float()
        labels[indices] = shard_labels
    if not bool(seen.all()):
        raise FeatureCacheError(f"{where}: shards cover {int(seen.sum())} of the key's num_samples="
                                f"{key.num_samples} samples")
    return CachedFeatures(features=features, labels=labels)
