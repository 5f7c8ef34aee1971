"""Inputs computed on the whole graph (degree, propagated features), against a dense reference."""

import numpy as np
import pytest
import torch

from spexphormer.graph.features import _sorted_by_destination, input_features, input_width, propagate


def _random_graph(n=30, e=120, seed=0, directed=True):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, e), generator=g)
    ei = ei[:, ei[0] != ei[1]]
    if not directed:
        ei = torch.cat([ei, ei.flip(0)], 1)
    ei = torch.unique(ei, dim=1)
    return ei, torch.randn(n, 5, generator=g, dtype=torch.float64).float()


def _dense_reference(x, ei, hops):
    """Written from the formula: X^(h) = D_in^-1/2 A D_out^-1/2 X^(h-1), A[i, j] = 1 for j -> i."""
    n = x.shape[0]
    a = np.zeros((n, n))
    a[ei[1].numpy(), ei[0].numpy()] = 1.0
    d_in, d_out = np.maximum(a.sum(1), 1), np.maximum(a.sum(0), 1)
    p = a / np.sqrt(d_in)[:, None] / np.sqrt(d_out)[None, :]
    out, h = [], x.double().numpy()
    for _ in range(hops):
        h = p @ h
        out.append(h)
    return out


@pytest.mark.parametrize("order", ["by source", "by destination"])  # the loaders' order skips the sort
@pytest.mark.parametrize("directed", [True, False])
def test_propagation_matches_dense_formula(directed, order):
    ei, x = _random_graph(directed=directed)  # unique() sorts by (source, destination)
    if order == "by destination":
        ei = ei[:, torch.argsort(ei[1] * 1000 + ei[0])]
        assert _sorted_by_destination(ei[0], ei[1])
    else:
        assert not _sorted_by_destination(ei[0], ei[1])
    got = propagate(x, ei, hops=3)
    for g, want in zip(got, _dense_reference(x, ei, 3)):
        np.testing.assert_allclose(g.numpy(), want, rtol=1e-5, atol=1e-5)


def test_wide_inputs_are_chunked_like_narrow_ones(monkeypatch):
    import spexphormer.graph.features as features
    ei, x = _random_graph()
    whole = propagate(x, ei, 2)
    monkeypatch.setattr(features, "_CHUNK_FLOATS", 2 * 30)  # 30 nodes: 5 columns in chunks of 2, 2, 1
    for a, b in zip(whole, propagate(x, ei, 2)):
        torch.testing.assert_close(a, b)


def test_input_features_layout_and_standardisation():
    ei, x = _random_graph()
    out = input_features(x, ei, degree=True, hops=2)
    assert out.shape == (30, input_width(5, True, 2)) == (30, 18)
    torch.testing.assert_close(out[:, :5], x)  # the node's own features first, unchanged
    deg = torch.bincount(ei[1], minlength=30).double()
    col = torch.log1p(deg)
    col = (col - col.mean()) / col.std()
    torch.testing.assert_close(out[:, 5].double(), col, rtol=1e-5, atol=1e-5)
    # then each hop of [x | degree column], standardised, from the dense formula
    base = torch.cat([x.double(), col[:, None]], 1)
    for hop, want in enumerate(_dense_reference(base, ei, 2)):
        want = torch.from_numpy(want)
        want = (want - want.mean(0)) / want.std(0)
        torch.testing.assert_close(out[:, 6 * (hop + 1):6 * (hop + 2)].double(), want, rtol=1e-4, atol=1e-4)
    added = out[:, 5:]
    torch.testing.assert_close(added.mean(0), torch.zeros(13), atol=1e-5, rtol=0)
    torch.testing.assert_close(added.std(0), torch.ones(13), atol=1e-4, rtol=0)


def test_hops_without_degree():
    ei, x = _random_graph()
    out = input_features(x, ei, hops=1)
    assert out.shape == (30, input_width(5, False, 1)) == (30, 10)


def test_nothing_added_returns_the_features():
    ei, x = _random_graph()
    assert input_features(x, ei) is x
    assert input_width(7) == 7


def test_isolated_nodes_get_zero_propagated_features():
    ei = torch.tensor([[0, 1], [1, 0]])
    x = torch.ones(3, 2)
    h1, = propagate(x, ei, 1)
    torch.testing.assert_close(h1[2], torch.zeros(2))
    torch.testing.assert_close(h1[0], torch.ones(2))


@pytest.mark.parametrize("edges", [[[0, 1], [1, 5]], [[0, -1], [1, 0]], [[0, 1, 2]]])
def test_bad_edges_are_a_data_error(edges):
    from spexphormer.errors import DataError
    x = torch.ones(3, 2)
    with pytest.raises(DataError):
        input_features(x, torch.tensor(edges), degree=True, hops=1)
    with pytest.raises(DataError):
        propagate(x, torch.tensor(edges), 1)
