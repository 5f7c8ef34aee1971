"""ExpanderAugment: a PyG transform whose output is checked edge by edge against the input."""

from __future__ import annotations

import torch
import torch_geometric.transforms as T
from torch_geometric.data import Data

from spexphormer.presets import preset
from spexphormer.graph import EXPANDER_EDGE, GRAPH_EDGE, SELF_LOOP, ExpanderAugment
from spexphormer.pipeline.stage1 import augment_graph


def _graph(n=40, e=200, seed=0, loops=True):
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.unique(torch.randint(0, n, (2, e), generator=g), dim=1)
    if not loops:
        edge_index = edge_index[:, edge_index[0] != edge_index[1]]
    attr = torch.randn(edge_index.size(1), 3, generator=g)
    return Data(x=torch.randn(n, 5, generator=g), edge_index=edge_index, edge_attr=attr, num_nodes=n)


def test_edges_types_and_attributes_match_the_input_edge_by_edge():
    data = _graph()
    out = ExpanderAugment(exp_deg=3, seed=7)(data)
    src, dst = out.edge_index
    n = data.num_nodes
    assert bool((dst[1:] >= dst[:-1]).all()), "grouped by destination"
    # graph edges: exactly the input's non-loop edges, each with its own attribute row
    given = {(int(u), int(v)): data.edge_attr[i] for i, (u, v) in enumerate(data.edge_index.t()) if u != v}
    graph_edges = (out.edge_type == GRAPH_EDGE).nonzero().view(-1)
    assert len(graph_edges) == len(given)
    for e in graph_edges.tolist():
        assert torch.equal(out.edge_attr[e], given[(int(src[e]), int(dst[e]))])
    assert bool((out.edge_attr[out.edge_type != GRAPH_EDGE] == 0).all())
    # one self-loop per node, the last in-edge of its slice; 2 * exp_deg expander in-edges each
    loops = out.edge_type == SELF_LOOP
    assert torch.equal(src[loops], torch.arange(n)) and torch.equal(dst[loops], torch.arange(n))
    assert torch.equal(torch.bincount(dst[out.edge_type == EXPANDER_EDGE], minlength=n), torch.full((n,), 6))
    last = torch.cat([(dst[1:] != dst[:-1]).nonzero().view(-1), torch.tensor([dst.numel() - 1])])
    assert bool(loops[last].all())
    # the input is untouched
    assert "edge_type" not in data
    assert data.edge_index.size(1) == len(given) + int((data.edge_index[0] == data.edge_index[1]).sum())


def test_seeded_and_composable():
    data = _graph(loops=False)
    a = T.Compose([T.NormalizeFeatures(), ExpanderAugment(exp_deg=2, seed=1)])(data)
    b = ExpanderAugment(exp_deg=2, seed=1)(data)
    c = ExpanderAugment(exp_deg=2, seed=2)(data)
    assert torch.equal(a.edge_index, b.edge_index) and torch.equal(a.edge_type, b.edge_type)
    assert not torch.equal(b.edge_index, c.edge_index)
    assert "ExpanderAugment(exp_deg=2, seed=1" in repr(ExpanderAugment(2, 1))


def test_the_pipeline_goes_through_the_transform(toy_graph):
    cfg = preset(None).override(["graph.exp_deg=2", "graph.seed=3"])
    graph = augment_graph(toy_graph, cfg)
    out = ExpanderAugment.from_config(cfg.graph)(toy_graph)
    assert torch.equal(graph.edge_index, out.edge_index) and torch.equal(graph.edge_type, out.edge_type)
    assert torch.equal(graph.ptr[1:] - graph.ptr[:-1], torch.bincount(out.edge_index[1], minlength=toy_graph.num_nodes))
