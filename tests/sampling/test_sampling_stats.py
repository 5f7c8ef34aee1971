"""Statistical tests of the samplers against exact laws.

Each case replicates one node (same scores) ``REPS`` times in one graph, so a single call gives
``REPS`` independent samples (the keys depend on the edge position). Frequencies are compared to
the exact probabilities with a tolerance of 5 binomial standard errors, sqrt(p (1 - p) / n):
with ~30 comparisons per run the chance of a false failure is ~1e-5.
"""

import itertools

import numpy as np
import pytest
import torch

from spexphormer.sampling import sample_neighbours

REPS = 20_000
P5 = np.array([0.4, 0.3, 0.15, 0.1, 0.05])
Z_TOL = 5.0


def replicated(p: np.ndarray, reps: int = REPS):
    """CSR offsets and scores of ``reps`` nodes that all have in-edge scores ``p``."""
    deg = len(p)
    ptr = torch.arange(reps + 1, dtype=torch.int64) * deg
    scores = torch.from_numpy(np.tile(p, reps).astype(np.float32))
    return ptr, scores


def local(pos: torch.Tensor, deg: int) -> np.ndarray:
    """Edge positions -> index of the edge within its node (0..deg-1)."""
    return (pos.numpy() - np.arange(pos.shape[0])[:, None] * deg).astype(np.int64)


def successive_inclusion(p: np.ndarray, k: int) -> np.ndarray:
    """Exact inclusion probabilities of successive sampling, by enumerating ordered draws."""
    incl = np.zeros(len(p))
    for seq in itertools.permutations(range(len(p)), k):
        prob, left = 1.0, 1.0
        for e in seq:
            prob *= p[e] / left
            left -= p[e]
        incl[list(seq)] += prob
    return incl


def assert_freq(count: np.ndarray, n: int, expected: np.ndarray) -> None:
    freq = count / n
    se = np.sqrt(np.maximum(expected * (1 - expected), 1e-12) / n)
    z = np.abs(freq - expected) / se
    assert (z < Z_TOL).all(), f"freq {freq} expected {expected} (z = {z})"


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("seed", [0, 123])
def test_reservoir_inclusion_matches_successive_sampling(k, seed):
    ptr, scores = replicated(P5)
    idx = local(sample_neighbours(ptr, scores, k, "reservoir", seed), len(P5))
    assert (np.sort(idx, axis=1)[:, 1:] != np.sort(idx, axis=1)[:, :-1]).all()  # distinct
    counts = np.bincount(idx.ravel(), minlength=len(P5))
    assert_freq(counts, REPS, successive_inclusion(P5, k))
    # Column 0 is the first successive draw, hence distributed as P.
    assert_freq(np.bincount(idx[:, 0], minlength=len(P5)), REPS, P5)


def test_reservoir_pairs_match_successive_sampling():
    ptr, scores = replicated(P5)
    idx = np.sort(local(sample_neighbours(ptr, scores, 2, "reservoir", 7), len(P5)), axis=1)
    pairs = list(itertools.combinations(range(len(P5)), 2))
    exact = np.array([P5[a] * P5[b] / (1 - P5[a]) + P5[b] * P5[a] / (1 - P5[b]) for a, b in pairs])
    code = idx[:, 0] * len(P5) + idx[:, 1]
    counts = np.array([np.count_nonzero(code == a * len(P5) + b) for a, b in pairs])
    assert_freq(counts, REPS, exact)


def test_reservoir_zero_scores_only_fill_up():
    p = np.array([0.6, 0.4, 0.0, 0.0])
    ptr, scores = replicated(p)
    idx = local(sample_neighbours(ptr, scores, 2, "reservoir", 1), len(p))
    assert (np.sort(idx, axis=1) == [0, 1]).all()
    idx = local(sample_neighbours(ptr, scores, 3, "reservoir", 1), len(p))
    assert (np.sort(idx[:, :2], axis=1) == [0, 1]).all()  # positives come first, in key order
    counts = np.bincount(idx[:, 2], minlength=len(p))
    assert counts[:2].sum() == 0
    assert_freq(counts[2:], REPS, np.array([0.5, 0.5]))


@pytest.mark.parametrize("k", [1, 2, 4])
def test_uniform_inclusion_is_k_over_degree(k):
    ptr, scores = replicated(P5)
    idx = local(sample_neighbours(ptr, scores, k, "uniform", 3), len(P5))
    assert all(len(set(row)) == k for row in idx[:200])
    counts = np.bincount(idx.ravel(), minlength=len(P5))
    assert_freq(counts, REPS, np.full(len(P5), k / len(P5)))


@pytest.mark.parametrize("method", ["reservoir", "topk", "uniform"])
def test_k_above_degree_takes_all_plus_extras(method):
    p = np.array([0.6, 0.3, 0.1])
    k = 5
    ptr, scores = replicated(p)
    idx = local(sample_neighbours(ptr, scores, k, method, 11), len(p))
    assert (np.sort(idx[:, :3], axis=1) == [0, 1, 2]).all()
    if method == "topk":
        assert (idx[:, :3] == [0, 1, 2]).all()  # decreasing score
    expected = np.full(3, 1 / 3) if method == "uniform" else p
    counts = np.bincount(idx[:, 3:].ravel(), minlength=3)
    assert_freq(counts, REPS * (k - 3), expected)
