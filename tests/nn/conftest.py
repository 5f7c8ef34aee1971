"""Small random graphs shared by the nn tests."""

import pytest
import torch


def random_graph(n: int, p: float, num_types: int = 3, seed: int = 0):
    """Random directed graph without duplicate edges, plus a self-loop (type 2) on every node.

    Returns ``edge_index [2, E]`` (row 0 source, row 1 destination) and ``edge_type [E]``.
    """
    g = torch.Generator().manual_seed(seed)
    adj = torch.rand(n, n, generator=g) < p  # adj[dst, src]
    adj.fill_diagonal_(False)
    dst, src = adj.nonzero(as_tuple=True)
    types = torch.randint(0, num_types - 1, (src.numel(),), generator=g)
    loops = torch.arange(n)
    edge_index = torch.stack([torch.cat([src, loops]), torch.cat([dst, loops])])
    edge_type = torch.cat([types, torch.full((n,), num_types - 1)])
    perm = torch.randperm(edge_index.size(1), generator=g)  # no ordering assumption
    return edge_index[:, perm], edge_type[perm]


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    """Make the kernels work in many small (ragged) chunks even on tiny test graphs."""
    import spexphormer.nn.chunks as chunks

    monkeypatch.setattr(chunks, "NEIGHBOUR_CHUNK_FLOATS", 200)
    monkeypatch.setattr(chunks, "EDGE_CHUNK_FLOATS", 256)
    monkeypatch.setattr(chunks, "CUDA_EDGE_CHUNK_FLOATS", 256)


@pytest.fixture
def make_graph():
    """Factory ``make_graph(n, p, seed=...)`` for :func:`random_graph`."""
    return random_graph


@pytest.fixture
def graph():
    return random_graph(13, 0.3, seed=1)
