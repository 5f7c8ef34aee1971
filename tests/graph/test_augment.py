import torch

from spexphormer.graph import EXPANDER_EDGE, GRAPH_EDGE, SELF_LOOP, augment, graph_fingerprint, spectral_gap


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


def test_spectral_choice_keeps_the_best_candidate():
    ei, n = _graph(n=60)
    single = augment(ei, n, 2, seed=3, candidates=1)
    best = augment(ei, n, 2, seed=3, candidates=8)
    gap = lambda a: spectral_gap(a.edge_index[:, a.edge_type == EXPANDER_EDGE], n)  # noqa: E731
    assert gap(best) >= gap(single) - 1e-6


def test_edge_attr_is_carried_and_padded():
    ei, n = _graph(n=20, e=50)
    attr = torch.arange(ei.size(1) * 2, dtype=torch.float).view(-1, 2) + 1
    aug = augment(ei, n, 1, seed=0, edge_attr=attr)
    assert aug.edge_attr.shape == (aug.num_edges, 2)
    assert torch.all(aug.edge_attr[aug.edge_type != GRAPH_EDGE] == 0)
    assert torch.all(aug.edge_attr[aug.edge_type == GRAPH_EDGE] > 0)


def test_fingerprint_ignores_edge_order_but_not_edges():
    ei, n = _graph()
    perm = torch.randperm(ei.size(1))
    assert graph_fingerprint(ei, n) == graph_fingerprint(ei[:, perm], n)
    assert graph_fingerprint(ei, n) != graph_fingerprint(ei[:, 1:], n)
    assert graph_fingerprint(ei, n) != graph_fingerprint(ei, n + 1)
