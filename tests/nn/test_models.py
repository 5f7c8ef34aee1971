"""The three models: shapes, score export, weight transfer."""

import pytest
import torch

from spexphormer.nn import AttentionScoreEstimator, Exphormer, Spexphormer


def test_ase_shapes_and_scores(graph):
    edge_index, edge_type = graph
    torch.manual_seed(0)
    model = AttentionScoreEstimator(in_dim=5, out_dim=3, hidden=4, num_layers=3)
    x = torch.randn(13, 5)
    assert model(x, edge_index, edge_type).shape == (13, 3)
    logits, scores = model(x, edge_index, edge_type, temperature=0.2, return_scores=True)
    assert logits.shape == (13, 3) and scores.shape == (3, edge_index.size(1))
    assert scores.dtype == torch.float32 and not scores.requires_grad
    sums = torch.zeros(3, 13).index_add_(1, edge_index[1], scores)
    assert torch.allclose(sums, torch.ones_like(sums), atol=1e-5)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_ase_multi_head_scores_average(graph):
    edge_index, edge_type = graph
    model = AttentionScoreEstimator(5, 1, hidden=8, num_layers=2, heads=2, norm="batch")
    _, scores = model(torch.randn(13, 5), edge_index, edge_type, return_scores=True)
    sums = torch.zeros(2, 13).index_add_(1, edge_index[1], scores)
    assert torch.allclose(sums, torch.ones_like(sums), atol=1e-5)


def test_lower_temperature_sharpens_scores(graph):
    edge_index, edge_type = graph
    torch.manual_seed(1)
    model = AttentionScoreEstimator(5, 1, hidden=4, num_layers=1).eval()
    x = torch.randn(13, 5)

    def entropy(t):
        _, s = model(x, edge_index, edge_type, temperature=t, return_scores=True)
        return -(s * s.clamp_min(1e-30).log()).sum()

    assert entropy(0.05) < entropy(1.0)


def test_exphormer_shapes_and_scores(graph):
    edge_index, edge_type = graph
    model = Exphormer(5, 2, hidden=16, heads=4, num_layers=2, dropout=0.2)
    x = torch.randn(13, 5)
    assert model(x, edge_index, edge_type).shape == (13, 2)
    logits, scores = model(x, edge_index, edge_type, return_scores=True)
    assert scores.shape == (2, edge_index.size(1))


def _batch(sizes, ks, seed=0):
    g = torch.Generator().manual_seed(seed)
    index = [torch.randint(0, sizes[l], (sizes[l + 1], ks[l]), generator=g) for l in range(len(ks))]
    types = [torch.randint(0, 3, (sizes[l + 1], ks[l]), generator=g) for l in range(len(ks))]
    return index, types


def test_spexphormer_shapes_and_backward():
    sizes, ks = [40, 25, 12, 6], [3, 5, 2]
    index, types = _batch(sizes, ks)
    model = Spexphormer(7, 4, hidden=16, heads=2, num_layers=3, dropout=0.25)
    out = model(torch.randn(40, 7), index, types)
    assert out.shape == (6, 4)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(ValueError):
        model(torch.randn(40, 7), index[:2], types[:2])


def test_spexphormer_equals_exphormer_with_same_weights():
    """All nodes at every layer and the same table each layer = Exphormer on the flattened edges."""
    torch.manual_seed(3)
    n, k = 30, 6
    index = torch.randint(0, n, (n, k))
    index[:, 0] = torch.arange(n)
    types = torch.randint(0, 3, (n, k))
    ex = Exphormer(5, 3, hidden=16, heads=4, num_layers=2, dropout=0.5).double()
    sp = Spexphormer(5, 3, hidden=16, heads=4, num_layers=2, dropout=0.5).double()
    x = torch.randn(n, 5, dtype=torch.float64)
    ex.train()
    ex(x, torch.stack([index.reshape(-1), torch.arange(n).repeat_interleave(k)]), types.reshape(-1))
    sp.load_state_dict(ex.state_dict())  # includes the updated running statistics
    ex.eval(), sp.eval()
    edge_index = torch.stack([index.reshape(-1), torch.arange(n).repeat_interleave(k)])
    out_ex = ex(x, edge_index, types.reshape(-1))
    out_sp = sp(x, [index, index], [types, types])
    assert torch.allclose(out_ex, out_sp)
