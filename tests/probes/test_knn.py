"""Weighted k-NN: the chunked search and votes equal a brute-force reference."""

import pytest
import torch
import torch.nn.functional as F

from mae_transfer.probes.knn import knn_classify, normalize_rows_, top_neighbours, weighted_votes

T = 0.07


def brute_force(bank, bank_labels, queries, k, num_classes):
    """Every similarity, a full sort, and one vote at a time in float64."""
    sims = F.normalize(queries.double(), dim=1) @ F.normalize(bank.double(), dim=1).T
    order = sims.argsort(dim=1, descending=True)[:, :k]
    votes = torch.zeros(len(queries), num_classes, dtype=torch.float64)
    for query in range(len(queries)):
        for neighbour in order[query].tolist():
            votes[query, int(bank_labels[neighbour])] += torch.exp(sims[query, neighbour] / T)
    return order, votes


@pytest.fixture(scope="module")
def features():
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(6, 16, generator=generator)
    bank_labels = torch.randint(0, 6, (97,), generator=generator)
    query_labels = torch.randint(0, 6, (23,), generator=generator)
    bank = centres[bank_labels] + torch.randn(97, 16, generator=generator)
    queries = centres[query_labels] + torch.randn(23, 16, generator=generator)
    return bank, bank_labels, queries, query_labels


def test_chunked_search_and_votes_equal_brute_force(features):
    bank, bank_labels, queries, _ = features
    normed_bank, normed_queries = normalize_rows_(bank.clone(), chunk=10), normalize_rows_(queries.clone(), chunk=7)
    sims, index = top_neighbours(normed_bank, normed_queries, 20, bank_chunk=11)  # 9 merged bank chunks
    few, few_index = top_neighbours(normed_bank, normed_queries, 30, bank_chunk=11)  # 11 + 11 < 30 at the first merge
    assert torch.equal(few_index[:, :20], index) and few.shape == (23, 30)
    reference = {k: brute_force(bank, bank_labels, queries, k, 6) for k in (1, 5, 20)}
    for k, (order, expected_votes) in reference.items():
        assert torch.equal(index[:, :k], order), f"k={k}: other neighbours than the brute force"
        votes = weighted_votes(sims, bank_labels[index], k, T, 6)
        torch.testing.assert_close(votes.double(), expected_votes, rtol=1e-5, atol=0)
    predictions = knn_classify(normed_bank, bank_labels, normed_queries, (1, 5, 20), T, 6, query_chunk=7,
                               bank_chunk=11)
    for k, (_, expected_votes) in reference.items():
        assert torch.equal(predictions.topk[k][:, 0], expected_votes.argmax(dim=1))
        assert torch.equal(predictions.topk[k], expected_votes.topk(5, dim=1).indices)


def test_accuracy_counts_top1_and_top5(features):
    bank, bank_labels, queries, query_labels = features
    predictions = knn_classify(normalize_rows_(bank.clone()), bank_labels, normalize_rows_(queries.clone()), (10,), T, 6)
    top1, top5 = predictions.accuracy(query_labels)[10]
    assert top1 == float((predictions.topk[10][:, 0] == query_labels).sum())
    assert top1 <= top5 <= len(query_labels) and top1 > len(query_labels) / 2  # well-separated centres


def test_k_larger_than_the_bank_is_refused(features):
    bank, bank_labels, queries, _ = features
    with pytest.raises(ValueError, match=r"probe\.knn\.ks: k=200 exceeds the 97 images"):
        knn_classify(bank, bank_labels, queries, (20, 200), T, 6)
