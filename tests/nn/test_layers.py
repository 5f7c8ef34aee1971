"""Norms, layer blocks and their equivalences."""

import pytest
import torch
from torch_geometric.nn import GraphNorm as PyGGraphNorm

from spexphormer.errors import ConfigError
from spexphormer.nn import (
    ASELayer,
    ExphormerLayer,
    FeedForward,
    GraphNorm,
    SpexphormerLayer,
    make_norm,
    neighbour_table_to_edge_list,
)

DT = torch.float64


def test_graph_norm_matches_pyg():
    torch.manual_seed(0)
    ours, ref = GraphNorm(6), PyGGraphNorm(6)
    with torch.no_grad():
        for p in ours.parameters():
            p.normal_()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(20, 6) * 3 + 1
    assert torch.allclose(ours(x), ref(x), atol=1e-5)


@pytest.mark.parametrize(
    "kind,cls",
    [("batch", torch.nn.BatchNorm1d), ("graph", GraphNorm), ("layer", torch.nn.LayerNorm),
     ("none", torch.nn.Identity), ("BATCH", torch.nn.BatchNorm1d)],
)
def test_make_norm(kind, cls):
    assert isinstance(make_norm(kind, 8), cls)


def test_make_norm_unknown():
    with pytest.raises(ConfigError):
        make_norm("group", 8)


def test_feed_forward_shape():
    ffn = FeedForward(8, mult=2, dropout=0.5)
    assert ffn.lin1.out_features == 16
    assert ffn(torch.randn(5, 8)).shape == (5, 8)


def test_ase_layer(graph):
    edge_index, edge_type = graph
    layer = ASELayer(4)
    x, alpha = layer(torch.randn(13, 4), edge_index, edge_type, temperature=0.5, return_attention=True)
    assert x.shape == (13, 4) and alpha.shape == (edge_index.size(1), 1)
    assert isinstance(layer.norm1, GraphNorm)


def _set_running_stats(module, seed):
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


@pytest.mark.parametrize("heads,norm", [(1, "batch"), (2, "batch"), (4, "layer"), (4, "none")])
def test_spexphormer_layer_equals_exphormer_layer(heads, norm):
    torch.manual_seed(heads)
    n_in, n_out, k, D = 21, 12, 4, 16
    index = torch.randint(0, n_in, (n_out, k))
    index[:, 2] = index[:, 0]
    edge_type = torch.randint(0, 3, (n_out, k))
    ex = ExphormerLayer(D, heads, dropout=0.3, norm=norm).to(DT)
    sp = SpexphormerLayer(D, heads, dropout=0.3, norm=norm).to(DT)
    with torch.no_grad():
        for p in ex.parameters():
            p.add_(0.1 * torch.randn_like(p))
        _set_running_stats(ex, heads)
    assert set(ex.state_dict()) == set(sp.state_dict())
    sp.load_state_dict(ex.state_dict())
    ex.eval(), sp.eval()
    h = torch.randn(n_in, D, dtype=DT, requires_grad=True)
    out_sp = sp(h, index, edge_type)
    edge_index, flat_type = neighbour_table_to_edge_list(index, edge_type)
    out_ex = ex(h, edge_index, flat_type)
    assert out_sp.shape == (n_out, D)
    assert torch.allclose(out_sp, out_ex[:n_out])
    w = torch.randn(n_out, D, dtype=DT)
    g_sp = torch.autograd.grad((out_sp * w).sum(), [h, *sp.parameters()])
    g_ex = torch.autograd.grad((out_ex[:n_out] * w).sum(), [h, *ex.parameters()])
    for a, b in zip(g_sp, g_ex):
        assert torch.allclose(a, b, atol=1e-10)


def test_layers_return_attention(graph):
    edge_index, edge_type = graph
    x, alpha = ExphormerLayer(8, 2)(torch.randn(13, 8), edge_index, edge_type, return_attention=True)
    assert x.shape == (13, 8) and alpha.shape == (edge_index.size(1), 2)
    index, types = torch.randint(0, 13, (5, 3)), torch.randint(0, 3, (5, 3))
    h, alpha = SpexphormerLayer(8, 2)(torch.randn(13, 8), index, types, return_attention=True)
    assert h.shape == (5, 8) and alpha.shape == (5, 3, 2)
