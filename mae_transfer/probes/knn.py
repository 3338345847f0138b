"""Weighted k-NN classification on frozen features (DINO, Caron et al. 2021; DINOv2 ``eval/knn.py``).

Features are L2-normalised, so the similarity is the cosine. For each query the ``max(ks)``
most similar bank rows are found once (one top-k search); each neighbour votes for its label with
weight ``exp(similarity / T)`` (DINO ``eval_knn.py``; DINOv2 normalises the same weights with a
softmax, which ranks classes identically), and the class with the largest vote sum wins, for
each k among the first k neighbours.

Memory is bounded: queries go in chunks of ``query_chunk`` rows, the bank in chunks of
``bank_chunk`` rows, and a running top-k is merged across bank chunks, so at most
``query_chunk x bank_chunk`` similarities exist at a time (plus the features themselves).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def normalize_rows_(features: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
    """L2-normalise the rows of ``features`` in place, ``chunk`` rows at a time; returns it."""
    for start in range(0, features.shape[0], chunk):
        block = features[start:start + chunk]
        block.div_(block.norm(dim=1, keepdim=True).clamp_min(1e-12))
    return features


def top_neighbours(bank: torch.Tensor, queries: torch.Tensor, k: int,
                   bank_chunk: int = 65536) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` largest ``queries @ bank.T`` per query, best first: (similarities, bank indices), (Q, k).

    ``bank`` (M, D) and ``queries`` (Q, D) should be normalised; ``k <= M``.
    """
    if not 1 <= k <= bank.shape[0]:
        raise ValueError(f"k={k} neighbours requested from a bank of {bank.shape[0]}")
    best_sims = best_index = None
    for start in range(0, bank.shape[0], bank_chunk):
        sims = queries @ bank[start:start + bank_chunk].T
        sims, index = sims.topk(min(k, sims.shape[1]), dim=1)
        index += start
        if best_sims is not None:
            merged = torch.cat([best_sims, sims], dim=1)
            sims, order = merged.topk(min(k, merged.shape[1]), dim=1)
            index = torch.cat([best_index, index], dim=1).gather(1, order)
        best_sims, best_index = sims, index
    return best_sims, best_index


def weighted_votes(sims: torch.Tensor, neighbour_labels: torch.Tensor, k: int, temperature: float,
                   num_classes: int) -> torch.Tensor:
    """Vote sums (Q, num_classes) of the first ``k`` neighbours, each weighted ``exp(sim / T)``."""
    weights = (sims[:, :k] / temperature).exp()
    votes = torch.zeros(sims.shape[0], num_classes, dtype=weights.dtype, device=sims.device)
    return votes.scatter_add_(1, neighbour_labels[:, :k], weights)


@dataclass
class KnnPredictions:
    """Per k: the top-5 classes of every query (Q, min(5, classes)), best first."""

    topk: dict[int, torch.Tensor]

    def accuracy(self, labels: torch.Tensor) -> dict[int, tuple[float, float]]:
        """Per k: (top-1 hits, top-5 hits) as counts."""
        labels = labels.view(-1, 1).to(next(iter(self.topk.values())).device)
        return {k: (float((ranked[:, :1] == labels).sum()), float((ranked == labels).any(dim=1).sum()))
                for k, ranked in self.topk.items()}


def knn_classify(bank: torch.Tensor, bank_labels: torch.Tensor, queries: torch.Tensor, ks: tuple[int, ...],
                 temperature: float, num_classes: int, query_chunk: int = 1024,
                 bank_chunk: int = 65536) -> KnnPredictions:
    """Weighted k-NN predictions for every k in ``ks`` from one top-``max(ks)`` search.

    ``bank`` and ``queries`` must already be L2-normalised (:func:`normalize_rows_`).

    Raises:
        ValueError: a k larger than the bank.
    """
    max_k = max(ks)
    if max_k > bank.shape[0]:
        raise ValueError(f"probe.knn.ks: k={max_k} exceeds the {bank.shape[0]} images of the k-NN bank")
    bank_labels = bank_labels.to(bank.device).long()
    ranked: dict[int, list[torch.Tensor]] = {k: [] for k in ks}
    top = min(5, num_classes)
    for start in range(0, queries.shape[0], query_chunk):
        chunk = queries[start:start + query_chunk].to(bank.device, bank.dtype)
        sims, index = top_neighbours(bank, chunk, max_k, bank_chunk)
        labels = bank_labels[index]
        for k in ks:
            votes = weighted_votes(sims.float(), labels, k, temperature, num_classes)
            ranked[k].append(votes.topk(top, dim=1).indices)
    empty = torch.empty(0, top, dtype=torch.long, device=bank.device)
    return KnnPredictions({k: torch.cat(parts) if parts else empty for k, parts in ranked.items()})

