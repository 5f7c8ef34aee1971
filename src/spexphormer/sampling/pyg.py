r"""Layer-wise sampled mini-batches as PyG :class:`~torch_geometric.data.Data`.

PyG's hierarchical mini-batches (:class:`~torch_geometric.loader.NeighborLoader` with
:func:`~torch_geometric.utils.trim_to_layer`) order nodes and edges by hop:

.. math::
    V = H_0 \,\Vert\, H_1 \,\Vert \cdots \Vert\, H_L, \qquad
    E = E_1 \,\Vert\, E_2 \,\Vert \cdots \Vert\, E_L,

where :math:`H_0` are the :math:`B` core (seed) nodes, :math:`E_h` are the in-edges of the nodes
of :math:`H_{h-1}` and :math:`H_h` are their sources not seen before (in order of first
appearance). ``num_sampled_nodes = [|H_0|, ..., |H_L|]`` and
``num_sampled_edges = [|E_1|, ..., |E_L|]``; GNN layer :math:`i` (0 = first) then reads nodes
:math:`H_0..H_{L-i}` and edges :math:`E_1..E_{L-i}`.

Here a node :math:`v \in H_{h-1}` gets the :math:`k_{L-h}` in-edges that Spexphormer's
attention-guided sampler drew for it in layer :math:`L-h` (``layers.neighbours[L-h][v]``),
the last layer that updates it: the core nodes take the last layer's samples, their sources the
layer before, and so on. (Spexphormer itself redraws every node's edges in every layer; one edge
set shared by all layers is what PyG's single ``edge_index`` can express.)
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from spexphormer.sampling.batches import BatchBuilder, _claim, _extend, batch_slices
from spexphormer.sampling.sampled_layers import SampledLayers

__all__ = ["PygBatchBuilder", "iterate_pyg_batches"]


class PygBatchBuilder(BatchBuilder):
    r"""Builds hop-ordered PyG mini-batches (see the module docstring) from sampled layers.

    Args:
        layers (SampledLayers): The sampled graphs; layer :math:`L-h` gives the edges of hop
            :math:`h`.

    Returns (when called with core node ids):
        Data: ``edge_index`` :math:`(2, \sum_h |E_h|)` local to ``n_id`` (row 0 source, row 1
        destination), ``edge_type`` (0 graph, 1 expander, 2 self-loop), ``n_id`` (global ids,
        core first), ``batch_size`` :math:`B`, ``num_sampled_nodes`` (:math:`L+1` ints),
        ``num_sampled_edges`` (:math:`L` ints).
    """

    def _build(self, core_np: np.ndarray) -> Data:
        size = _claim(core_np, self._g2l, self._nodes, 0)
        if size < 0:
            self._size = -1 - size
            raise ValueError("core node ids must be unique")
        self._size = size
        num_layers, start = self.num_layers, 0
        nodes_per_hop, src, dst, types = [size], [], [], []
        for hop in range(1, num_layers + 1):
            layer, frontier = num_layers - hop, self._nodes[start:size].copy()
            nb = self._nb[layer][frontier]
            local = np.empty(nb.size, dtype=np.int64)
            self._size = _extend(nb.reshape(-1), self._g2l, self._nodes, size, local)
            src.append(local)
            dst.append(np.repeat(np.arange(start, size, dtype=np.int64), nb.shape[1]))
            types.append(self._types[layer][torch.from_numpy(frontier)].reshape(-1))
            nodes_per_hop.append(self._size - size)
            start, size = size, self._size
        edge_index = torch.from_numpy(np.stack([np.concatenate(src), np.concatenate(dst)]))
        return Data(edge_index=edge_index, edge_type=torch.cat(types).long(),
                    n_id=torch.from_numpy(self._nodes[:size].copy()), num_nodes=size,
                    batch_size=int(core_np.size), num_sampled_nodes=nodes_per_hop,
                    num_sampled_edges=[len(s) for s in src])


def iterate_pyg_batches(
    nodes: Tensor,
    batch_size: int,
    layers: SampledLayers,
    x: Tensor | None = None,
    y: Tensor | None = None,
    shuffle: bool = True,
    seed: int = 0,
) -> Iterator[Data]:
    r"""Cuts ``nodes`` into batches of core nodes and yields each as a hop-ordered PyG ``Data``.

    The cut and shuffle are those of :func:`~spexphormer.sampling.iterate_batches`.

    Args:
        nodes (LongTensor): Unique global ids of the target nodes.
        batch_size (int): Core nodes per batch.
        layers (SampledLayers): The sampled graphs (e.g. from
            :func:`~spexphormer.sampling.sample_layers`).
        x (Tensor, optional): Node features :math:`(N, F)`; the batch gets ``x[n_id]``.
        y (Tensor, optional): Labels :math:`(N, *)`; the batch gets ``y[n_id]`` (the
            supervised rows are the first ``batch_size``).
        shuffle (bool, optional): Shuffle ``nodes`` first. (default: :obj:`True`)
        seed (int, optional): Seed of the shuffle. (default: :obj:`0`)

    Yields:
        Data: See :class:`PygBatchBuilder`, plus ``x`` and ``y`` when given.

    Example::

        for batch in iterate_pyg_batches(train_nodes, 512, layers, data.x, data.y):
            out = model(batch.x, batch.edge_index, batch.num_sampled_nodes,
                        batch.num_sampled_edges)[:batch.batch_size]
    """
    builder = PygBatchBuilder(layers)
    for core in batch_slices(nodes, batch_size, shuffle, seed):
        batch = builder(core)
        if x is not None:
            batch.x = x[batch.n_id]
        if y is not None:
            batch.y = y[batch.n_id]
        yield batch
