r"""Per-type sampling budgets: a self-loop, :math:`k^g_\ell` graph edges and :math:`k^x_\ell` expander
edges per node and layer.

The paper's sampler draws :math:`k_\ell` edges per node among all its augmented in-edges, so a
node's graph neighbours compete with its expander neighbours for the slots. Here every type has
its own budget, and node :math:`v`'s row of layer :math:`\ell` is laid out as

.. math::
    \big[\; v \;\big|\; g_1, \ldots, g_{k^g_\ell} \;\big|\; x_1, \ldots, x_{k^x_\ell} \;\big],

slot 0 the self-loop, then :math:`\min(k^g_\ell, d^g_v)` distinct graph in-edges and
:math:`\min(k^x_\ell, d^x_v)` distinct expander in-edges, each block drawn by
:func:`~spexphormer.sampling.sample_neighbours` among the edges of its type alone (the same law:
``reservoir`` by score, ``uniform`` or ``topk``). A block that a node cannot fill
(:math:`d^t_v < k^t_\ell`) is padded with slots of type :data:`PAD_EDGE` that point at :math:`v`
itself; models mask them out. So when :math:`k^g_\ell \ge d^g_v` the node keeps its **whole**
graph neighbourhood, with no repeats, and the table still has a fixed width
:math:`1 + k^g_\ell + k^x_\ell`: a batch's memory stays bounded by the batch size and the per-layer
budgets (no full-neighbourhood expansion).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from spexphormer.graph import EXPANDER_EDGE, GRAPH_EDGE, PAD_EDGE, SELF_LOOP
from spexphormer.sampling.sampled_layers import SampledLayers, layer_seed
from spexphormer.sampling.rng import derive_seed
from spexphormer.sampling.samplers import check_method, sample_neighbours

__all__ = ["sample_typed_layers", "sample_type_block"]


def sample_type_block(ptr: Tensor, src: Tensor, edge_type: Tensor, scores_l: Tensor, kind: int, k: int,
                      method: str, seed: int) -> tuple[Tensor, Tensor]:
    r"""One layer's block of ``k`` slots of edge type ``kind`` for every node.

    The edges of type ``kind`` are regrouped by destination (they keep their sorted order, so
    this is a filter, not a sort) and sampled among themselves; slot :math:`j \ge d^{kind}_v` is a
    padding slot :math:`(v, \mathrm{PAD\_EDGE})`.

    Shapes:
        - **input:** ptr :math:`(N + 1,)`; src, edge_type, scores_l :math:`(E,)`
        - **output:** ``(neighbours, types)``, both :math:`(N, k)` int64
    """
    num_nodes = ptr.numel() - 1
    own = torch.arange(num_nodes).unsqueeze(1).expand(num_nodes, k)
    neighbours = own.clone()
    types = torch.full((num_nodes, k), PAD_EDGE, dtype=torch.int64)
    if k == 0:
        return neighbours, types
    pos = (edge_type == kind).nonzero().view(-1)  # in destination order
    deg = torch.diff(ptr)
    dst = torch.repeat_interleave(torch.arange(num_nodes), deg)[pos]
    deg_t = torch.bincount(dst, minlength=num_nodes)
    has = deg_t > 0
    if not bool(has.any()):
        return neighbours, types
    sub_ptr = torch.zeros(int(has.sum()) + 1, dtype=torch.int64)
    sub_ptr[1:] = torch.cumsum(deg_t[has], 0)
    picked = sample_neighbours(sub_ptr, scores_l[pos], k, method, seed)  # [n_has, k] positions in pos
    valid = torch.arange(k).unsqueeze(0) < deg_t[has].unsqueeze(1)  # slots beyond the degree: padding
    rows = has.nonzero().view(-1)
    neighbours[rows] = torch.where(valid, src[pos[picked]], own[rows])
    types[rows] = torch.where(valid, torch.full_like(picked, kind), torch.full_like(picked, PAD_EDGE))
    return neighbours, types


def sample_typed_layers(
    ptr: Tensor,
    src: Tensor,
    edge_type: Tensor,
    scores: Tensor,
    graph_ks: Sequence[int],
    expander_ks: Sequence[int],
    method: str = "reservoir",
    seed: int = 0,
    *,
    epoch: int = 0,
) -> SampledLayers:
    r"""Every layer's table ``[self | graph block | expander block]`` (see the module docstring).

    Layer :math:`\ell`'s graph block is seeded with
    :math:`\mathrm{derive}(\mathrm{layer\_seed}(\mathrm{seed}, \ell, \mathrm{epoch}), 0)` and its
    expander block with :math:`\ldots, 1)`: reproducible and re-drawn every epoch.

    Args:
        ptr (Tensor): CSR offsets of the destination-sorted edges.
        src (Tensor): source node of each sorted edge.
        edge_type (Tensor): type of each sorted edge (0 graph, 1 expander, 2 self-loop).
        scores (Tensor): per-layer scores in sorted edge order.
        graph_ks (Sequence[int]): graph slots per node for each layer, :math:`k^g_\ell \ge 0`.
        expander_ks (Sequence[int]): expander slots per node for each layer, :math:`k^x_\ell \ge 0`.
        method (str): ``"reservoir"``, ``"uniform"`` or ``"topk"`` (within each type).
        seed (int): base seed.
        epoch (int, optional): mixed into every layer's seed. (default: ``0``)

    Returns:
        SampledLayers: per layer :math:`(N, 1 + k^g_\ell + k^x_\ell)` neighbours and types
        (types 0, 1, 2 and :data:`PAD_EDGE`).

    Shapes:
        - **input:** ptr :math:`(N + 1,)`, src :math:`(E,)`, edge_type :math:`(E,)`,
          scores :math:`(L, E)`
    """
    check_method(method)
    if len(graph_ks) != len(expander_ks):
        raise ValueError(f"graph_ks has {len(graph_ks)} entries but expander_ks {len(expander_ks)}")
    if min(list(graph_ks) + list(expander_ks), default=0) < 0:
        raise ValueError("per-type budgets must be non-negative")
    if scores.dim() != 2 or scores.size(0) != len(graph_ks) or scores.size(1) != src.numel():
        raise ValueError(f"scores must have shape ({len(graph_ks)}, {src.numel()}), got {tuple(scores.shape)}")
    ptr, src, edge_type = ptr.to(torch.int64), src.to(torch.int64), edge_type.to(torch.int64)
    num_nodes = ptr.numel() - 1
    own = torch.arange(num_nodes).unsqueeze(1)
    neighbours, types = [], []
    for layer, (kg, kx) in enumerate(zip(graph_ks, expander_ks)):
        base = layer_seed(seed, layer, epoch)
        g_nb, g_t = sample_type_block(ptr, src, edge_type, scores[layer], GRAPH_EDGE, int(kg), method,
                                      derive_seed(base, 0))
        x_nb, x_t = sample_type_block(ptr, src, edge_type, scores[layer], EXPANDER_EDGE, int(kx), method,
                                      derive_seed(base, 1))
        neighbours.append(torch.cat([own, g_nb, x_nb], dim=1))
        types.append(torch.cat([torch.full_like(own, SELF_LOOP), g_t, x_t], dim=1))
    return SampledLayers(neighbours=neighbours, edge_types=types)
