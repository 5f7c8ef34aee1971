"""sample_layers and the mini-batch builder."""

import pytest
import torch

from spexphormer.graph import gather_edges, group_by_destination
from spexphormer.sampling import (
    BatchBuilder,
    build_batch,
    iterate_batches,
    sample_layers,
)

NUM_NODES = 300
KS = [3, 2, 4]


@pytest.fixture(scope="module")
def graph():
    """Destination-sorted random graph with self-loops and per-node normalised scores."""
    gen = torch.Generator().manual_seed(0)
    num_edges = 1500
    edges = torch.randint(0, NUM_NODES, (2, num_edges), generator=gen)
    loops = torch.arange(NUM_NODES).repeat(2, 1)
    edge_index = torch.cat([edges, loops], dim=1)
    types = torch.cat([torch.randint(0, 2, (num_edges,), generator=gen),
                       torch.full((NUM_NODES,), 2)])
    perm, ptr = group_by_destination(edge_index, NUM_NODES)
    src, dst, etype = edge_index[0, perm], edge_index[1, perm], types[perm]
    raw = gather_edges(torch.rand(len(KS), edge_index.size(1), generator=gen), perm)
    total = torch.zeros(len(KS), NUM_NODES).index_add_(1, dst, raw)
    scores = raw / total[:, dst]
    return ptr, src, etype, scores


@pytest.fixture(scope="module")
def layers(graph):
    return sample_layers(*graph, KS, "reservoir", seed=3)


def reference_sets(core, layers):
    """Python reference of the backward walk: S_L = core, S_l = S_{l+1} + new sources."""
    sets = [list(core)]
    for layer in reversed(range(len(KS))):
        cur = list(sets[0])
        seen = set(cur)
        for v in sets[0]:
            for u in layers.neighbours[layer][v].tolist():
                if u not in seen:
                    seen.add(u)
                    cur.append(u)
        sets.insert(0, cur)
    return sets


def test_sample_layers_shapes_and_edges(graph, layers):
    ptr, src, etype, _ = graph
    assert layers.ks == KS and layers.num_nodes == NUM_NODES
    for nb, ty in zip(layers.neighbours, layers.edge_types):
        assert nb.shape == ty.shape and nb.dtype == torch.int64
        for v in range(0, NUM_NODES, 37):  # every sample is a real in-edge of v
            in_edges = set(zip(src[ptr[v]:ptr[v + 1]].tolist(), etype[ptr[v]:ptr[v + 1]].tolist()))
            assert set(zip(nb[v].tolist(), ty[v].tolist())) <= in_edges
    again = sample_layers(*graph, KS, "reservoir", seed=3)
    assert all(torch.equal(a, b) for a, b in zip(layers.neighbours, again.neighbours))
    other = sample_layers(*graph, KS, "reservoir", seed=3, epoch=1)
    assert not torch.equal(layers.neighbours[0], other.neighbours[0])


def check_batch(batch, core, layers):
    sets = reference_sets(core.tolist(), layers)
    assert batch.sizes == [len(s) for s in sets]
    assert batch.nodes.tolist() == sets[0]
    assert len(set(batch.nodes.tolist())) == batch.sizes[0]
    for layer in range(len(KS)):
        assert batch.nodes[: batch.sizes[layer]].tolist() == sets[layer]  # prefix property
        rows = batch.nodes[: batch.sizes[layer + 1]]
        idx = batch.index[layer]
        assert idx.shape == (batch.sizes[layer + 1], KS[layer])
        assert int(idx.min()) >= 0 and int(idx.max()) < batch.sizes[layer]
        assert torch.equal(batch.nodes[idx], layers.neighbours[layer][rows])
        assert torch.equal(batch.edge_type[layer], layers.edge_types[layer][rows])
    assert torch.equal(batch.core, core) and batch.sizes[-1] == core.numel()


def test_build_batch_matches_reference(layers):
    core = torch.tensor([5, 17, 250, 3, 99])
    check_batch(build_batch(core, layers), core, layers)


def test_builder_reuse_and_duplicate_core(layers):
    builder = BatchBuilder(layers)
    first, second = torch.tensor([1, 2, 3]), torch.tensor([2, 200, 7, 8])
    check_batch(builder(first), first, layers)
    with pytest.raises(ValueError, match="unique"):
        builder(torch.tensor([4, 5, 4]))
    check_batch(builder(second), second, layers)  # map was reset after each call
    assert (builder._g2l == -1).all()
    with pytest.raises(ValueError):
        builder(torch.tensor([NUM_NODES]))


@pytest.mark.parametrize("shuffle", [False, True])
def test_iterate_batches_covers_each_node_once(layers, shuffle):
    nodes = torch.arange(0, NUM_NODES, 3)
    batches = list(iterate_batches(nodes, 16, layers, shuffle=shuffle, seed=4))
    cores = torch.cat([b.core for b in batches])
    assert sorted(cores.tolist()) == nodes.tolist()
    assert [b.core.numel() for b in batches[:-1]] == [16] * (len(batches) - 1)
    assert torch.equal(cores, nodes) != shuffle
    check_batch(batches[-1], batches[-1].core, layers)
    again = torch.cat([b.core for b in iterate_batches(nodes, 16, layers, shuffle, seed=4)])
    assert torch.equal(cores, again)
