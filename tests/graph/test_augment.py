import importlib

import numpy as np
import pytest
import torch

from spexphormer.graph import (EXPANDER_EDGE, GRAPH_EDGE, SELF_LOOP, augment, expander_edges, graph_fingerprint,
                               ramanujan_gap, spectral_gap)

augment_module = importlib.import_module("spexphormer.graph.augment")  # the package re-exports the function


def _graph(n=100, e=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, e), generator=g)
    return torch.unique(ei[:, ei[0] != ei[1]], dim=1), n


def test_counts_types_and_expander_in_degree():
    ei, n = _graph()
    aug = augment(ei, n, exp_deg=3, seed=1)
    types = aug.edge_type
    assert aug.num_edges == ei.size(1) + 2 * 3 * n + n
    exp_in = torch.bincount(aug.dst[types == EXPANDER_EDGE], minlength=n)
    assert torch.equal(exp_in, torch.full((n,), 6))  # exactly 2 * exp_deg
    exp_out = torch.bincount(aug.src[types == EXPANDER_EDGE], minlength=n)
    assert torch.equal(exp_out, torch.full((n,), 6))
    loops = aug.edge_index[:, types == SELF_LOOP]
    assert torch.equal(loops[0], loops[1]) and torch.equal(loops[0].sort().values, torch.arange(n))
    # the graph's own edges are all kept, as type 0
    kept = aug.edge_index[:, types == GRAPH_EDGE]
    key = lambda e: set((e[0] * n + e[1]).tolist())  # noqa: E731
    assert key(kept) == key(ei)


def test_sorted_by_destination_with_csr_offsets():
    ei, n = _graph()
    aug = augment(ei, n, exp_deg=2, seed=0)
    assert torch.all(aug.dst[1:] >= aug.dst[:-1])
    for v in (0, 17, n - 1):
        assert torch.all(aug.dst[aug.ptr[v]:aug.ptr[v + 1]] == v)
    assert int(aug.ptr[-1]) == aug.num_edges
    assert torch.all(aug.in_degree() == torch.bincount(aug.dst, minlength=n))


def test_deterministic_from_seed():
    ei, n = _graph()
    a, b, c = augment(ei, n, 4, seed=5), augment(ei, n, 4, seed=5), augment(ei, n, 4, seed=6)
    assert torch.equal(a.edge_index, b.edge_index) and torch.equal(a.edge_type, b.edge_type)
    assert not torch.equal(a.edge_index, c.edge_index)


def test_spectral_gap_matches_dense_eigenvalues():
    n, deg = 40, 3
    expander = expander_edges(n, deg, torch.Generator().manual_seed(1))
    adj = np.zeros((n, n))
    np.add.at(adj, (expander[1].numpy(), expander[0].numpy()), 1.0)
    second = np.sort(np.linalg.eigvalsh(adj))[-2]  # the top eigenvalue is the degree 2 * deg
    assert spectral_gap(expander, n) == pytest.approx(2 * deg - second, abs=1e-3)
    assert ramanujan_gap(2 * deg) == pytest.approx(2 * deg - 2 * np.sqrt(2 * deg - 1))


def _scripted_gaps(monkeypatch, gaps):
    """Make the i-th spectral check return gaps[i]; record how many checks ran."""
    calls = []
    monkeypatch.setattr(augment_module, "spectral_gap", lambda e, n: (calls.append(e), gaps[len(calls) - 1])[1])
    return calls


def _draws(n, deg, seed, count):
    g = torch.Generator().manual_seed(seed)
    return [expander_edges(n, deg, g) for _ in range(count)]


def test_expander_is_redrawn_until_it_meets_the_ramanujan_bound(monkeypatch):
    ei, n = _graph(n=60)
    target = ramanujan_gap(4)
    calls = _scripted_gaps(monkeypatch, [target - 0.5, target - 0.1, target + 0.01, target + 1])
    aug = augment(ei, n, 2, seed=3, candidates=10)
    assert len(calls) == 3  # stops at the first draw that meets the bound
    chosen = aug.edge_index[:, aug.edge_type == EXPANDER_EDGE]
    third = _draws(n, 2, 3, 3)[2]
    key = lambda e: sorted((e[0] * n + e[1]).tolist())  # noqa: E731
    assert key(chosen) == key(third)


def test_expander_keeps_the_best_draw_when_none_meets_the_bound(monkeypatch):
    ei, n = _graph(n=60)
    target = ramanujan_gap(4)
    calls = _scripted_gaps(monkeypatch, [target - 3, target - 1, target - 2, target - 4])
    aug = augment(ei, n, 2, seed=3, candidates=4)
    assert len(calls) == 4
    chosen = aug.edge_index[:, aug.edge_type == EXPANDER_EDGE]
    key = lambda e: sorted((e[0] * n + e[1]).tolist())  # noqa: E731
    assert key(chosen) == key(_draws(n, 2, 3, 2)[1])
    calls = _scripted_gaps(monkeypatch, [target - 3])
    augment(ei, n, 2, seed=3, candidates=1)
    assert calls == []  # candidates=1: no check at all


def test_no_edge_features_are_carried():
    ei, n = _graph(n=20, e=50)
    aug = augment(ei, n, 1, seed=0)
    assert not hasattr(aug, "edge_attr")


def test_fingerprint_ignores_edge_order_but_not_edges():
    ei, n = _graph()
    perm = torch.randperm(ei.size(1))
    assert graph_fingerprint(ei, n) == graph_fingerprint(ei[:, perm], n)
    assert graph_fingerprint(ei, n) != graph_fingerprint(ei[:, 1:], n)
    assert graph_fingerprint(ei, n) != graph_fingerprint(ei, n + 1)
