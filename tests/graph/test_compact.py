"""The compact augmented graph: int32 ids and int8 types, the same edges as int64 storage."""

import numpy as np
import torch

from spexphormer.graph import AugmentedGraph, augment
from spexphormer.graph.compact import group_edges
from spexphormer.nn.csr_attention import CSRGraph
from spexphormer.sampling import iterate_batches, sample_layers
from spexphormer.scores import Scores
from spexphormer.utils.checksum import save_sealed


def _random_edges(n, m, seed):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, m), generator=g)
    return ei[:, ei[0] != ei[1]]


def _wide(graph: AugmentedGraph) -> AugmentedGraph:
    """The same graph as the int64 storage of older scores files."""
    return AugmentedGraph(graph.edge_index.long(), graph.edge_type.long(), graph.ptr, graph.num_nodes)


def test_augmented_graph_is_compact_and_equals_a_stable_sort_reference():
    n, ei = 200, _random_edges(200, 900, 0)
    aug = augment(ei, n, exp_deg=3, seed=4)
    assert (aug.edge_index.dtype, aug.edge_type.dtype, aug.ptr.dtype) == (torch.int32, torch.int8, torch.int64)
    # reference: the same expander drawn in int64, all edges sorted stably by destination
    from spexphormer.graph import expander_edges
    expander = expander_edges(n, 3, torch.Generator().manual_seed(4))
    edges = torch.cat([ei, expander, torch.arange(n).repeat(2, 1)], dim=1)
    types = torch.cat([torch.zeros(ei.size(1)), torch.ones(expander.size(1)), torch.full((n,), 2.0)]).long()
    order = torch.sort(edges[1], stable=True).indices
    assert torch.equal(aug.edge_index.long(), edges[:, order]) and torch.equal(aug.edge_type.long(), types[order])
    assert torch.equal(aug.ptr, torch.cat([torch.zeros(1, dtype=torch.long), torch.bincount(edges[1], minlength=n).cumsum(0)]))


def test_group_edges_keeps_input_order_within_each_destination_and_writes_in_place():
    g = torch.Generator().manual_seed(1)
    src = torch.randint(0, 50, (400,), generator=g, dtype=torch.int32)
    dst = torch.randint(0, 50, (400,), generator=g, dtype=torch.int32)
    typ = torch.randint(0, 3, (400,), generator=g).to(torch.int8)
    out = torch.empty(2, 400, dtype=torch.int32)
    s, t, ptr = group_edges(src, dst, typ, 50, out_src=out[0])
    order = torch.sort(dst.long(), stable=True).indices
    assert s.data_ptr() == out[0].data_ptr()
    assert torch.equal(out[0], src[order]) and torch.equal(t, typ[order]) and t.dtype == torch.int8
    assert int(ptr[-1]) == 400 and torch.equal(ptr.diff(), torch.bincount(dst.long(), minlength=50))


def test_csr_graph_reads_the_compact_arrays_in_place_and_matches_the_int64_graph():
    n, aug = 300, augment(_random_edges(300, 1500, 2), 300, exp_deg=2, seed=0)
    compact, wide = CSRGraph.from_graph(aug), CSRGraph.from_graph(_wide(aug))
    assert np.shares_memory(compact.src, aug.edge_index.numpy()) and np.shares_memory(compact.edge_type, aug.edge_type.numpy())
    for name in ("ptr", "src", "edge_type", "src_ptr", "src_dst", "src_type"):
        assert np.array_equal(getattr(compact, name), getattr(wide, name)), name
    # source grouping: a stable sort of the edges by source (independent reference)
    dst = aug.edge_index[1].long()
    order = torch.sort(aug.edge_index[0].long(), stable=True).indices
    assert np.array_equal(compact.src_dst, dst[order].numpy()) and compact.src_dst.dtype == np.int32
    assert np.array_equal(compact.src_type, aug.edge_type[order].numpy())
    assert np.array_equal(np.diff(compact.src_ptr), np.bincount(aug.edge_index[0].numpy(), minlength=n))


def test_an_int64_scores_file_loads_compact_and_samples_the_same_int32_tables(tmp_path):
    n, aug = 120, augment(_random_edges(120, 600, 3), 120, exp_deg=2, seed=1)
    raw = torch.rand(2, aug.num_edges, generator=torch.Generator().manual_seed(0))
    sums = torch.zeros(2, n).index_add_(1, aug.edge_index[1].long(), raw)
    scores = raw / sums[:, aug.edge_index[1].long()]
    wide = _wide(aug)
    save_sealed({"format": "spexphormer-scores", "version": 3, "fingerprint": "f", "num_nodes": n,
                 "edge_index": wide.edge_index, "edge_type": wide.edge_type, "ptr": wide.ptr, "scores": scores},
                tmp_path / "old.pt")  # as written before the compact graph
    loaded = Scores.load(tmp_path / "old.pt")
    assert loaded.graph.edge_index.dtype == torch.int32 and loaded.graph.edge_type.dtype == torch.int8
    assert torch.equal(loaded.graph.edge_index.long(), wide.edge_index)
    g = loaded.graph
    new = sample_layers(g.ptr, g.src, g.edge_type, loaded.scores, [4, 3], seed=5)
    old = sample_layers(wide.ptr, wide.src, wide.edge_type, scores, [4, 3], seed=5)
    assert [t.dtype for t in new.neighbours] == [torch.int32] * 2 and new.edge_types[0].dtype == torch.int8
    for a, b in zip(new.neighbours + new.edge_types, old.neighbours + old.edge_types):
        assert torch.equal(a.long(), b)
    train = torch.arange(0, n, 2)
    for x, y in zip(iterate_batches(train, 16, new, seed=1), iterate_batches(train, 16, old, seed=1)):
        assert torch.equal(x.nodes, y.nodes) and x.sizes == y.sizes
        assert all(torch.equal(a, b) for a, b in zip(x.index, y.index))
        assert all(a.dtype == torch.int64 and torch.equal(a, b) for a, b in zip(x.edge_type, y.edge_type))
    # and a compact file written now round-trips in its own dtypes
    loaded.save(tmp_path / "new.pt")
    again = Scores.load(tmp_path / "new.pt")
    assert again.graph.edge_index.dtype == torch.int32 and torch.equal(again.graph.edge_index, g.edge_index)
