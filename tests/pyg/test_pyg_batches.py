"""Hop-ordered PyG batches: checked against a plain-Python walk and against PyG's trim_to_layer."""

from __future__ import annotations

import torch
from torch_geometric.nn import SAGEConv
from torch_geometric.utils import trim_to_layer

from spexphormer.sampling import SampledLayers
from spexphormer.sampling.pyg import PygBatchBuilder, iterate_pyg_batches


def _layers(n=60, ks=(3, 2, 4), seed=0):
    g = torch.Generator().manual_seed(seed)
    nb = [torch.randint(0, n, (n, k), generator=g) for k in ks]
    types = [torch.randint(0, 3, (n, k), generator=g) for k in ks]
    return SampledLayers(nb, types)


def _reference(core, layers):
    """NeighborLoader's hop order, written out with Python lists."""
    L, nodes = layers.num_layers, list(core)
    hop, edges, etypes, n_per_hop, e_per_hop = list(core), [], [], [len(core)], []
    for h in range(1, L + 1):
        nxt, count = [], 0
        for v in hop:
            for j in range(layers.neighbours[L - h].size(1)):
                u = int(layers.neighbours[L - h][v, j])
                if u not in nodes:
                    nodes.append(u), nxt.append(u)
                edges.append((nodes.index(u), nodes.index(v)))
                etypes.append(int(layers.edge_types[L - h][v, j]))
                count += 1
        n_per_hop.append(len(nxt)), e_per_hop.append(count)
        hop = nxt
    return nodes, edges, etypes, n_per_hop, e_per_hop


def test_matches_a_plain_python_walk():
    layers = _layers()
    core = [5, 17, 3, 42]
    batch = PygBatchBuilder(layers)(torch.tensor(core))
    nodes, edges, etypes, n_per_hop, e_per_hop = _reference(core, layers)
    assert batch.n_id.tolist() == nodes and batch.batch_size == 4 and batch.num_nodes == len(nodes)
    assert [tuple(e) for e in batch.edge_index.t().tolist()] == edges
    assert batch.edge_type.tolist() == etypes
    assert batch.num_sampled_nodes == n_per_hop and batch.num_sampled_edges == e_per_hop


def test_trim_to_layer_gives_the_untrimmed_core_outputs():
    torch.manual_seed(0)
    layers, x = _layers(), torch.randn(60, 8)
    convs = torch.nn.ModuleList([SAGEConv(8, 8), SAGEConv(8, 8), SAGEConv(8, 4)])
    for batch in iterate_pyg_batches(torch.arange(60), 7, layers, x=x, shuffle=True, seed=1):
        full, trimmed, ei = batch.x, batch.x, batch.edge_index
        for i, conv in enumerate(convs):
            full = conv(full, batch.edge_index).relu()
            trimmed, ei, _ = trim_to_layer(i, batch.num_sampled_nodes, batch.num_sampled_edges, trimmed, ei)
            assert int(ei.max()) < trimmed.size(0)
            trimmed = conv(trimmed, ei).relu()
        b = batch.batch_size
        assert torch.allclose(full[:b], trimmed[:b], atol=1e-6)


def test_every_node_is_the_core_of_one_batch_and_features_follow():
    layers, x, y = _layers(), torch.randn(60, 2), torch.arange(60)
    seen = []
    for batch in iterate_pyg_batches(torch.arange(10, 50), 16, layers, x=x, y=y, seed=3):
        assert torch.equal(batch.x, x[batch.n_id]) and torch.equal(batch.y, batch.n_id)
        seen += batch.n_id[: batch.batch_size].tolist()
    assert sorted(seen) == list(range(10, 50))
