"""The expander-augmented attention graph (docs/method.md §2).

Each node attends along three kinds of incoming edges::

    type 0  the graph's own edges
    type 1  edges of a random 2*exp_deg-regular expander (exp_deg random Hamiltonian cycles,
            both directions)
    type 2  a self-loop

The result is stored grouped by destination with CSR offsets, the layout that both stages use:
the in-edges of node v are positions ``ptr[v]:ptr[v+1]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from spexphormer.graph.compact import destinations, group_edges, index_dtype, narrow_indices, narrow_types

GRAPH_EDGE, EXPANDER_EDGE, SELF_LOOP = 0, 1, 2
NUM_EDGE_TYPES = 3
#: Edge type of a padding slot in stage 2's per-type neighbour tables (a block its node cannot
#: fill; the slot points at the node itself and is masked out). Not an edge of the augmented graph.
PAD_EDGE = 3
SPECTRAL_CHECK_MAX_NODES = 100_000


@dataclass
class AugmentedGraph:
    """Graph + expander + self-loop edges, grouped by destination (stable: input order kept).

    Shapes:
        edge_index: [2, E] (row 0 source u, row 1 destination v; v attends to u), int32 when
            N < 2^31 (:mod:`spexphormer.graph.compact`)
        edge_type: [E] in {0, 1, 2}, int8
            ptr: [N + 1] CSR offsets over destinations, int64

    A dataset's own edge features are not carried: no model reads them, and padding them onto
    every expander edge and self-loop costs E x D floats for nothing.
    """

    edge_index: Tensor
    edge_type: Tensor
    ptr: Tensor
    num_nodes: int

    @property
    def num_edges(self) -> int:
        return self.edge_index.size(1)

    @property
    def src(self) -> Tensor:
        return self.edge_index[0]

    @property
    def dst(self) -> Tensor:
        return self.edge_index[1]

    def in_degree(self) -> Tensor:
        return self.ptr[1:] - self.ptr[:-1]

    @classmethod
    def compact(cls, edge_index: Tensor, edge_type: Tensor, ptr: Tensor, num_nodes: int) -> "AugmentedGraph":
        """The graph with int32 node ids and int8 types where they fit (e.g. from an older,
        int64 scores file); arrays already of those types are not copied."""
        return cls(narrow_indices(edge_index, num_nodes), narrow_types(edge_type, NUM_EDGE_TYPES),
                   ptr.to(torch.int64), int(num_nodes))

    def to(self, device) -> "AugmentedGraph":
        return AugmentedGraph(self.edge_index.to(device), self.edge_type.to(device), self.ptr.to(device),
                              self.num_nodes)


def expander_edges(num_nodes: int, exp_deg: int, generator: torch.Generator,
                   dtype: torch.dtype = torch.long) -> Tensor:
    """Edges of ``exp_deg`` random Hamiltonian cycles, each in both directions.

    Every node gets in-degree (and out-degree) exactly ``2 * exp_deg``. ``dtype`` only changes
    the storage, never the edges.

    Returns:
        edge_index [2, 2 * exp_deg * num_nodes]
    """
    if exp_deg == 0 or num_nodes < 2:
        return torch.empty(2, 0, dtype=dtype)
    cycles = torch.stack([torch.randperm(num_nodes, generator=generator).to(dtype) for _ in range(exp_deg)])
    nxt = cycles.roll(-1, dims=1)  # successor on each cycle, last -> first
    src = torch.cat([cycles.reshape(-1), nxt.reshape(-1)])
    dst = torch.cat([nxt.reshape(-1), cycles.reshape(-1)])
    return torch.stack([src, dst])


def ramanujan_gap(degree: int) -> float:
    """The spectral gap of a Ramanujan ``degree``-regular graph: ``d - 2 sqrt(d - 1)``.

    A random regular graph comes within any epsilon of it with high probability (Friedman), so an
    expander whose gap falls short of it is an unlucky draw worth redrawing.
    """
    return degree - 2.0 * math.sqrt(max(degree - 1, 0))


def spectral_gap(edge_index: Tensor, num_nodes: int) -> float:
    """λ₂ of the Laplacian of a regular graph: degree minus the second-largest adjacency eigenvalue."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import eigsh

    src, dst = edge_index.numpy()
    adj = sp.coo_matrix((np.ones(src.size), (src, dst)), shape=(num_nodes, num_nodes)).tocsr()
    degree = src.size / num_nodes
    top = eigsh(adj, k=2, which="LA", return_eigenvectors=False, tol=1e-4)
    return float(degree - np.sort(top)[0])


def augment(
    edge_index: Tensor,
    num_nodes: int,
    exp_deg: int = 15,
    seed: int = 0,
    candidates: int = 10,
) -> AugmentedGraph:
    """Add expander edges and self-loops to a graph and group the result by destination.

    Args:
        edge_index: [2, E] the input graph's edges (u -> v), without self-loops.
        num_nodes: N.
        exp_deg: number of random Hamiltonian cycles; expander in-degree is ``2 * exp_deg``.
        seed: seed of the expander; the same seed gives the same graph.
        candidates: redraw the expander until its spectral gap meets the Ramanujan bound
            (:func:`ramanujan_gap`), at most this many draws, keeping the best if none does; 1
            keeps the first draw unchecked. The check (one sparse eigensolve, 0.14 s at 10k nodes
            and 2.4 s at 100k on one core) is skipped above 100k nodes.

    Returns:
        :class:`AugmentedGraph` with ``E + 2 * exp_deg * N + N`` edges.
    """
    generator = torch.Generator().manual_seed(seed)
    idx = index_dtype(num_nodes)
    expander = expander_edges(num_nodes, exp_deg, generator, idx)
    if candidates > 1 and exp_deg > 0 and 2 * exp_deg < num_nodes <= SPECTRAL_CHECK_MAX_NODES:
        target, best = ramanujan_gap(2 * exp_deg), spectral_gap(expander, num_nodes)
        for _ in range(candidates - 1):
            if best >= target:
                break
            other = expander_edges(num_nodes, exp_deg, generator, idx)
            if (gap := spectral_gap(other, num_nodes)) > best:
                expander, best = other, gap
    loops = torch.arange(num_nodes, dtype=idx)
    src = torch.cat([edge_index[0].to(idx), expander[0], loops])
    dst = torch.cat([edge_index[1].to(idx), expander[1], loops])
    sizes = (edge_index.size(1), expander.size(1), num_nodes)
    del expander
    types = torch.cat([torch.full((size,), kind, dtype=torch.int8)
                       for size, kind in zip(sizes, (GRAPH_EDGE, EXPANDER_EDGE, SELF_LOOP))])
    # A stable counting sort by destination: each node's in-edges are its graph edges, then its
    # expander edges, then its self-loop. Written straight into the compact edge_index.
    grouped = torch.empty(2, src.numel(), dtype=idx)
    _, types, ptr = group_edges(src, dst, types, num_nodes, out_src=grouped[0])
    del src, dst
    destinations(ptr, grouped[1])
    return AugmentedGraph(grouped, types, ptr, num_nodes)
