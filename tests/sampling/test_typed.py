"""Per-type sampling budgets: bounded rows, whole neighbourhoods when they fit, reproducible draws."""

from collections import Counter

import pytest
import torch

from spexphormer.graph import augment
from spexphormer.sampling import iterate_batches
from spexphormer.graph import PAD_EDGE
from spexphormer.sampling.typed import sample_typed_layers
from tests.helpers import make_toy_graph


def _graph(num_nodes=300, num_edges=1500, exp_deg=3, hub=True):
    data = make_toy_graph(num_nodes, num_edges)
    edge_index = data.edge_index
    if hub:  # node 0 gets every other node as an in-neighbour: degree far above any budget
        others = torch.arange(1, num_nodes)
        edge_index = torch.unique(torch.cat([edge_index, torch.stack([others, torch.zeros_like(others)])], 1), dim=1)
    g = augment(edge_index, num_nodes, exp_deg=exp_deg, seed=0)
    scores = torch.rand(2, g.num_edges)
    return g, scores


def _in_edges(g, v, kind):
    lo, hi = int(g.ptr[v]), int(g.ptr[v + 1])
    return sorted(int(s) for s, t in zip(g.src[lo:hi], g.edge_type[lo:hi]) if int(t) == kind)


@pytest.mark.parametrize("method", ["reservoir", "uniform", "topk"])
def test_rows_are_self_then_bounded_graph_then_expander_blocks(method):
    g, scores = _graph()
    kg, kx = [4, 6], [2, 5]
    layers = sample_typed_layers(g.ptr, g.src, g.edge_type, scores, kg, kx, method, seed=3)
    assert layers.ks == [1 + a + b for a, b in zip(kg, kx)]  # a fixed width, whatever the degree
    for layer, (a, b) in enumerate(zip(kg, kx)):
        nb, ty = layers.neighbours[layer], layers.edge_types[layer]
        assert torch.equal(nb[:, 0], torch.arange(g.num_nodes)) and torch.all(ty[:, 0] == 2)
        assert torch.all((ty[:, 1:1 + a] == 0) | (ty[:, 1:1 + a] == PAD_EDGE))
        assert torch.all((ty[:, 1 + a:] == 1) | (ty[:, 1 + a:] == PAD_EDGE))
        pad = ty == PAD_EDGE
        assert torch.equal(nb[pad], torch.arange(g.num_nodes).unsqueeze(1).expand_as(nb)[pad])
        for v in range(g.num_nodes):
            for kind, block, k in ((0, slice(1, 1 + a), a), (1, slice(1 + a, None), b)):
                real = [int(u) for u, t in zip(nb[v, block], ty[v, block]) if int(t) != PAD_EDGE]
                neigh = _in_edges(g, v, kind)
                assert len(real) == min(k, len(neigh))  # as many as fit
                # distinct edges (the expander may hold parallel edges), all real in-edges of that type
                assert not Counter(real) - Counter(neigh)
                # padding only at the end of the block
                assert all(int(t) == PAD_EDGE for t in ty[v, block][len(real):])


def test_whole_graph_neighbourhood_is_kept_when_the_budget_covers_the_degree():
    g, scores = _graph(hub=False)
    deg = torch.bincount(g.edge_index[1][g.edge_type == 0], minlength=g.num_nodes)
    kg = int(deg.max())
    layers = sample_typed_layers(g.ptr, g.src, g.edge_type, scores, [kg, kg], [1, 1], seed=0)
    for layer in range(2):
        nb, ty = layers.neighbours[layer], layers.edge_types[layer]
        for v in range(g.num_nodes):
            kept = sorted(int(u) for u, t in zip(nb[v], ty[v]) if int(t) == 0)
            assert kept == _in_edges(g, v, 0)


def test_a_hub_keeps_only_its_budget_and_batches_stay_bounded():
    g, scores = _graph()
    layers = sample_typed_layers(g.ptr, g.src, g.edge_type, scores, [3, 3], [2, 2], seed=0)
    assert int((layers.edge_types[0][0] == 0).sum()) == 3  # node 0 has 299 graph in-edges
    for batch in iterate_batches(torch.arange(10), 5, layers, shuffle=False, seed=0):
        assert batch.sizes[-1] == 5
        assert batch.sizes[0] <= 5 * 7 * 7  # B * prod(1 + kg + kx): the budget, not the degree


def test_same_seed_same_draw_other_epoch_other_draw():
    g, scores = _graph()
    a = sample_typed_layers(g.ptr, g.src, g.edge_type, scores, [3, 3], [2, 2], seed=5, epoch=1)
    b = sample_typed_layers(g.ptr, g.src, g.edge_type, scores, [3, 3], [2, 2], seed=5, epoch=1)
    c = sample_typed_layers(g.ptr, g.src, g.edge_type, scores, [3, 3], [2, 2], seed=5, epoch=2)
    assert all(torch.equal(x, y) for x, y in zip(a.neighbours, b.neighbours))
    assert not all(torch.equal(x, y) for x, y in zip(a.neighbours, c.neighbours))


def test_scores_guide_the_expander_block():
    """With top-k, the expander slots are the highest-scoring expander edges."""
    g, scores = _graph(hub=False)
    layers = sample_typed_layers(g.ptr, g.src, g.edge_type, scores, [0, 0], [2, 2], "topk", seed=0)
    for v in range(0, g.num_nodes, 17):
        lo, hi = int(g.ptr[v]), int(g.ptr[v + 1])
        exp = [(float(scores[0, e]), int(g.src[e])) for e in range(lo, hi) if int(g.edge_type[e]) == 1]
        best = [u for _, u in sorted(exp, reverse=True)[:2]]
        assert layers.neighbours[0][v, 1:].tolist() == best


def test_bad_budgets_are_refused():
    g, scores = _graph()
    with pytest.raises(ValueError, match="graph_ks has 2 entries"):
        sample_typed_layers(g.ptr, g.src, g.edge_type, scores, [1, 1], [1])
    with pytest.raises(ValueError, match="non-negative"):
        sample_typed_layers(g.ptr, g.src, g.edge_type, scores, [1, -1], [1, 1])
