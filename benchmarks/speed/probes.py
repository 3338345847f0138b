#!/usr/bin/env python
"""Frozen-probe speed and memory, each as a ratio against a reference measured in the same run.

- linear sweep: one training step of the 78 heads (13 lrs x cls/avg/both x last 1/4 blocks) fed by
  one frozen ViT-B forward, against one head (cls, last block) trained the same way (same
  ``fit_heads`` loop, batch, data); target <= 1.15x.
- k-NN: weighted k-NN (k 10/20/100/200 from one search, chunked) of Q queries against an
  M x 768 bank of generated features, against the bare chunked matrix products it needs;
  target <= 2x; the peak resident memory it adds is printed.
- extraction: ``extract_shard`` (the cache's writer: data loader, frozen forward, pooling,
  copy out) against the bare ``forward_features`` loop on the same images; target within 5%.

    python benchmarks/speed/probes.py [--device cpu|cuda] [--full] [--part sweep|knn|extraction]
                                      [--sweep-batch N]

Default sizes fit a 2-core CPU; ``--full`` runs the issue's sizes (ViT-B/224 at batch 128,
50,000 queries against 1,280,000 features), for a GPU. Without ``--part`` each part runs in a
fresh subprocess, so the k-NN's peak memory is its own.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time

import torch
from torch.utils.data import Dataset

from mae_transfer.models import build_vit
from mae_transfer.probes.features import FrozenBackbone
from mae_transfer.probes.heads import HeadPoint, LinearSweep, cosine_factor
from mae_transfer.probes.knn import knn_classify, normalize_rows_
from mae_transfer.probes.loops import extract_shard, fit_heads
from mae_transfer.probes.settings import DINOV2_LEARNING_RATES, FEATURE_SOURCES


class RandomImages(Dataset):
    """In-memory images and labels (no decoding: the loops and the model are what is timed)."""

    def __init__(self, count: int, size: int, classes: int) -> None:
        generator = torch.Generator().manual_seed(0)
        self.images = torch.randn(count, 3, size, size, generator=generator)
        self.labels = torch.randint(0, classes, (count,), generator=generator)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return self.images[index], int(self.labels[index])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def step_seconds(points: list[HeadPoint], backbone, data, batch: int, steps: int, device: torch.device) -> float:
    """Median seconds per training step of a grid (the first step is warm-up)."""
    grid = LinearSweep(points, backbone.embed_dim, 1000, backbone.num_prefix_tokens).to(device)
    frozen = FrozenBackbone(backbone, grid.max_blocks, amp=device.type == "cuda")
    stamps: list[float] = []

    def progress(_what: str, _step: int, _total: int) -> None:
        _sync(device)
        stamps.append(time.perf_counter())

    fit_heads(grid, frozen, data, range(batch * (steps + 1)), epochs=1, batch_size=batch,
              optimizer=grid.make_optimizer(batch, 1, 0.9), schedule=cosine_factor, device=device, seed=0,
              progress=progress)
    return statistics.median(b - a for a, b in zip(stamps, stamps[1:]))


def sweep_ratio(device: torch.device, batch: int, steps: int, size: int, rounds: int = 2) -> None:
    backbone = build_vit("vit_base_patch16", img_size=size).to(device).eval()
    data = RandomImages(batch * (steps + 1), size, 1000)
    sweep = [HeadPoint(s, b, lr) for s in FEATURE_SOURCES for b in (1, 4) for lr in DINOV2_LEARNING_RATES]
    ones, manys = [], []
    for _ in range(rounds):  # alternated, the fastest round of each kept: other load only slows a round down
        ones.append(step_seconds([HeadPoint("cls", 1, 1e-3)], backbone, data, batch, steps, device))
        manys.append(step_seconds(sweep, backbone, data, batch, steps, device))
    one, many = min(ones), min(manys)
    print(f"linear sweep: ViT-B/{size}, batch {batch}, 1000 classes, median of {steps} steps, best of {rounds} "
          f"alternated rounds: {len(sweep)} heads {many:.3f} s/step, one head {one:.3f} s/step -> ratio "
          f"{many / one:.3f} (target <= 1.15)", flush=True)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def knn_ratio(device: torch.device, queries: int, bank_rows: int, dim: int = 768) -> None:
    generator = torch.Generator().manual_seed(0)
    bank = normalize_rows_(torch.randn(bank_rows, dim, generator=generator)).to(device)
    labels = torch.randint(0, 1000, (bank_rows,), generator=generator).to(device)
    query = normalize_rows_(torch.randn(queries, dim, generator=generator)).to(device)
    query_chunk, bank_chunk = 1024, 65536
    knn_classify(bank, labels, query[:query_chunk], (10, 20, 100, 200), 0.07, 1000)  # warm-up
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    before = rss_mb()
    knn_times, matmul_times = [], []
    for _ in range(2):  # alternated, the fastest of each kept
        _sync(device)
        start = time.perf_counter()
        knn_classify(bank, labels, query, (10, 20, 100, 200), 0.07, 1000, query_chunk, bank_chunk)
        _sync(device)
        knn_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        for q in range(0, queries, query_chunk):
            for b in range(0, bank_rows, bank_chunk):
                query[q:q + query_chunk] @ bank[b:b + bank_chunk].T
        _sync(device)
        matmul_times.append(time.perf_counter() - start)
    knn_time, matmul_time = min(knn_times), min(matmul_times)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else max(peak_rss_mb() - before, 0))
    features_mb = (bank.numel() + query.numel()) * 4 / 2**20
    print(f"k-NN (best of 2 alternated rounds): {queries} queries x {bank_rows} x {dim} bank (features {features_mb:.0f} MB), chunks "
          f"{query_chunk} x {bank_chunk}: {knn_time:.2f} s, bare matmuls {matmul_time:.2f} s -> ratio "
          f"{knn_time / matmul_time:.2f} (target <= 2); peak memory "
          f"{'allocated on the GPU' if device.type == 'cuda' else 'added to the resident set'}: {peak:.0f} MB "
          f"(one similarity block: {query_chunk * bank_chunk * 4 / 2**20:.0f} MB)", flush=True)


def extraction_ratio(device: torch.device, images: int, batch: int, size: int, rounds: int = 3) -> None:
    backbone = build_vit("vit_base_patch16", img_size=size).to(device).eval()
    data = RandomImages(images, size, 1000)
    frozen = FrozenBackbone(backbone, 1, amp=device.type == "cuda")
    batches = [data.images[i:i + batch].to(device) for i in range(0, images, batch)]
    autocast = torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    def extract() -> None:
        extract_shard(frozen, data, "cls", 1, 768, batch_size=batch, device=device)

    def bare() -> None:
        with torch.no_grad(), autocast:
            for chunk in batches:
                backbone.forward_features(chunk)

    extract_times, bare_times = [], []
    bare()  # warm-up
    for _ in range(rounds):  # alternated, the fastest of each kept
        for run, times in ((extract, extract_times), (bare, bare_times)):
            _sync(device)
            start = time.perf_counter()
            run()
            _sync(device)
            times.append(time.perf_counter() - start)
    extract_time, bare_time = min(extract_times), min(bare_times)
    print(f"extraction: ViT-B/{size}, {images} images at batch {batch}, best of {rounds} alternated rounds: "
          f"extract_shard {images / extract_time:.1f} img/s, bare forward_features {images / bare_time:.1f} img/s "
          f"-> ratio {extract_time / bare_time:.3f} (target <= 1.05)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--full", action="store_true", help="the issue's sizes (for a GPU)")
    parser.add_argument("--part", choices=("sweep", "knn", "extraction"), help="run one part in this process")
    parser.add_argument("--sweep-batch", type=int, help="the sweep's batch (default: 8, or 128 with --full)")
    args = parser.parse_args()
    if args.part is None:
        print(f"device {args.device}, torch threads {torch.get_num_threads()}, {'full' if args.full else 'reduced'} "
              f"sizes", flush=True)
        for part in ("knn", "extraction", "sweep"):
            subprocess.run([sys.executable, __file__, "--device", args.device, "--part", part,
                            *(["--full"] if args.full else []),
                            *(["--sweep-batch", str(args.sweep_batch)] if args.sweep_batch else [])], check=True)
        return
    device = torch.device(args.device)
    if args.part == "sweep":
        batch = args.sweep_batch or (128 if args.full else 8)
        sweep_ratio(device, batch, steps=10 if args.full else 3, size=224)
    elif args.part == "knn":
        knn_ratio(device, 50_000, 1_280_000) if args.full else knn_ratio(device, 4096, 131_072)
    else:
        extraction_ratio(device, 2048, 256, 224) if args.full else extraction_ratio(device, 32, 16, 224, rounds=2)


if __name__ == "__main__":
    main()
