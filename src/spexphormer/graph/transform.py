r"""The expander augmentation as a PyG transform (paper §3, the Exphormer attention graph)."""

from __future__ import annotations

import copy

import torch
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform

from spexphormer.graph.augment import GRAPH_EDGE, AugmentedGraph, augment

__all__ = ["ExpanderAugment"]


class ExpanderAugment(BaseTransform):
    r"""Adds the edges of a random expander and a self-loop per node, and tags every edge
    with its type (paper §3, the Exphormer attention graph).

    The new edge set of a graph :math:`G = (V, E)` with :math:`N` nodes is

    .. math::
        E' = \underbrace{E \setminus \{(v, v)\}}_{\text{type } 0}
        \;\cup\; \underbrace{\textstyle\bigcup_{c=1}^{d} \{(\pi_c(i), \pi_c(i+1)),
        (\pi_c(i+1), \pi_c(i))\}}_{\text{type } 1}
        \;\cup\; \underbrace{\{(v, v) : v \in V\}}_{\text{type } 2},

    where :math:`\pi_1, \ldots, \pi_d` are random Hamiltonian cycles (indices mod :math:`N`), so
    the expander part is :math:`2d`-regular. The edges are grouped by destination (stable: a
    node's graph edges keep their input order, then come its expander edges, then its
    self-loop), so node :math:`v`'s in-edges are one contiguous slice of ``edge_index``.

    The same ``seed`` gives the same expander, on every machine. Self-loops of the input are
    dropped (each node gets exactly one, of type 2). ``edge_attr``, if present, is kept for the
    graph's own edges and zero-filled for the added ones.

    .. code-block:: python

        from spexphormer.graph import ExpanderAugment

        data = ExpanderAugment(exp_deg=3, seed=0)(data)
        data.edge_index, data.edge_type   # [2, E'], [E'] with types 0, 1, 2

    Args:
        exp_deg (int, optional): Number :math:`d` of random Hamiltonian cycles; each node gains
            :math:`2d` expander in-edges. (default: :obj:`15`)
        seed (int, optional): Seed of the expander. (default: :obj:`0`)
        candidates (int, optional): Redraw the expander until its spectral gap meets the
            Ramanujan bound, at most this many draws (graphs up to 100k nodes; 1 keeps the first
            draw unchecked; see :func:`~spexphormer.graph.augment`). (default: :obj:`10`)

    Shapes:
        - **input:** ``edge_index`` :math:`(2, E)`, optional ``edge_attr`` :math:`(E, D)`
        - **output:** ``edge_index`` :math:`(2, E_0 + 2dN + N)`, ``edge_type``
          :math:`(E_0 + 2dN + N,)`, ``edge_attr`` :math:`(E_0 + 2dN + N, D)`, where :math:`E_0`
          counts the input's non-loop edges
    """

    def __init__(self, exp_deg: int = 15, seed: int = 0, candidates: int = 10) -> None:
        if exp_deg < 0 or candidates < 1:
            raise ValueError(f"need exp_deg >= 0 and candidates >= 1, got {exp_deg} and {candidates}")
        self.exp_deg, self.seed, self.candidates = int(exp_deg), int(seed), int(candidates)

    @classmethod
    def from_config(cls, graph_config) -> "ExpanderAugment":
        """The transform of a :class:`~spexphormer.config.GraphConfig` (``cfg.graph``)."""
        return cls(graph_config.exp_deg, graph_config.seed, graph_config.expander_candidates)

    def augmented_graph(self, data: Data) -> AugmentedGraph:
        """The augmented graph with its CSR offsets (what both stages read), in the compact
        dtypes of :mod:`~spexphormer.graph.compact`."""
        keep = data.edge_index[0] != data.edge_index[1]
        return augment(data.edge_index[:, keep], data.num_nodes, self.exp_deg, self.seed, self.candidates)

    def forward(self, data: Data) -> Data:
        keep = data.edge_index[0] != data.edge_index[1]
        graph = self.augmented_graph(data)
        out = copy.copy(data)
        out.edge_index, out.edge_type = graph.edge_index.long(), graph.edge_type.long()  # PyG's dtypes
        edge_attr = getattr(data, "edge_attr", None)
        if edge_attr is not None:
            # The sort is stable, so the graph edges keep their relative order within each
            # destination: they are the input edges in stable destination order.
            order = torch.argsort(data.edge_index[1, keep], stable=True)
            placed = edge_attr.new_zeros((graph.num_edges, *edge_attr.shape[1:]))
            placed[graph.edge_type == GRAPH_EDGE] = edge_attr[keep][order]
            out.edge_attr = placed
        return out

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(exp_deg={self.exp_deg}, seed={self.seed}, "
                f"candidates={self.candidates})")

