r"""Grouping edges by destination node (CSR by in-edges).

The samplers read each node's incoming edges as one contiguous slice. For an edge list
:math:`(u_e \to v_e)_{e=1}^{E}` this module computes the stable permutation :math:`\pi` that sorts
edges by destination and the offsets :math:`\mathrm{ptr}`:

.. math::
    \mathrm{ptr}[v] = \bigl|\{e : v_e < v\}\bigr|, \qquad
    v_{\pi(j)} = v \iff \mathrm{ptr}[v] \le j < \mathrm{ptr}[v+1],

with :math:`\pi` increasing inside each slice (stability). It is a counting sort, :math:`O(E + N)`,
parallel over destination ranges; its result is unique, hence independent of the thread count.
"""

from __future__ import annotations

import spexphormer.utils.numba_threads  # noqa: F401  (before any parallel kernel)
import numba
import numpy as np
import torch
from numba import njit, prange
from torch import Tensor

__all__ = ["group_by_destination", "gather_edges"]


def num_parts(num_buckets: int) -> int:
    """How many key ranges the parallel counting passes split ``num_buckets`` keys into."""
    return max(1, min(numba.get_num_threads(), max(int(num_buckets), 1)))


@njit(parallel=True, cache=True)
def bucket_offsets(keys, num_buckets, parts):
    """The counting pass of every stable counting sort here: CSR offsets ``ptr`` with
    ``ptr[b + 1] - ptr[b]`` keys equal to ``b``, and the ``bounds`` of the ``parts`` key ranges
    (part ``p`` counts the keys in ``bounds[p]:bounds[p+1]``: no atomics, no per-thread copies).
    The fill passes (:func:`_fill_permutation`, :func:`~spexphormer.graph.compact.group_edges`,
    :func:`~spexphormer.nn.csr_kernels.fill_by_source`) place each key at ``ptr[key]`` onwards."""
    bounds = np.empty(parts + 1, np.int64)
    for p in range(parts + 1):
        bounds[p] = (num_buckets * p) // parts
    ptr = np.zeros(num_buckets + 1, np.int64)
    for p in prange(parts):
        lo, hi = bounds[p], bounds[p + 1]
        for i in range(keys.shape[0]):
            k = keys[i]
            if lo <= k < hi:
                ptr[k + 1] += 1
    for b in range(num_buckets):
        ptr[b + 1] += ptr[b]
    return ptr, bounds


@njit(parallel=True, cache=True)
def _fill_permutation(dst, ptr, bounds):
    """The stable permutation that groups ``dst`` as ``ptr`` says (part ``p`` owns one node range)."""
    parts, num_edges = bounds.shape[0] - 1, dst.shape[0]
    fill = ptr[:-1].copy()
    perm = np.empty(num_edges, np.int64)
    for p in prange(parts):
        lo, hi = bounds[p], bounds[p + 1]
        for i in range(num_edges):
            d = dst[i]
            if lo <= d < hi:
                perm[fill[d]] = i
                fill[d] += 1
    return perm


def group_by_destination(edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
    r"""Stable sort of the edges by destination node, with CSR offsets.

    Edge :math:`e` is column ``edge_index[:, e] = (u, v)``: node :math:`v` attends to :math:`u`.
    After grouping, ``edge_index[:, perm]`` lists node 0's in-edges first (in their original
    order), then node 1's, and so on; node :math:`v`'s in-edges are the positions
    ``ptr[v]:ptr[v+1]``.

    Args:
        edge_index (Tensor): Edge list, integer dtype.
        num_nodes (int): Number of nodes :math:`N`; every destination must lie in
            :math:`[0, N)`.

    Returns:
        (Tensor, Tensor): ``perm`` (int64) and ``ptr`` (int64, ``ptr[0] = 0``,
        ``ptr[N] = E``).

    Raises:
        ValueError: If ``edge_index`` is not of shape :math:`(2, E)`, ``num_nodes < 0``, or a
            destination is out of range.

    Shapes:
        - **input:** edge_index :math:`(2, E)`
        - **output:** perm :math:`(E,)`, ptr :math:`(N + 1,)`
    """
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index must have shape (2, E), got {tuple(edge_index.shape)}")
    num_nodes = int(num_nodes)
    if num_nodes < 0:
        raise ValueError(f"num_nodes must be >= 0, got {num_nodes}")
    dst = np.ascontiguousarray(edge_index[1].detach().cpu().numpy(), dtype=np.int64)
    if dst.size and (dst.min() < 0 or dst.max() >= num_nodes):
        raise ValueError(
            f"edge_index has destinations outside [0, {num_nodes}): "
            f"min {dst.min()}, max {dst.max()}"
        )
    ptr, bounds = bucket_offsets(dst, num_nodes, num_parts(num_nodes))
    return torch.from_numpy(_fill_permutation(dst, ptr, bounds)), torch.from_numpy(ptr)


def gather_edges(values: Tensor, perm: Tensor) -> Tensor:
    r"""Reorders per-edge values into destination-grouped order along the last dimension.

    .. math::
        \mathrm{out}[\ldots, j] = \mathrm{values}[\ldots, \pi(j)]

    Args:
        values (Tensor): Per-edge values, e.g. scores :math:`(L, E)` or types :math:`(E,)`.
        perm (Tensor): Permutation from :func:`group_by_destination`.

    Returns:
        Tensor: Contiguous tensor of the same shape as ``values``.

    Shapes:
        - **input:** values :math:`(*, E)`, perm :math:`(E,)`
        - **output:** :math:`(*, E)`
    """
    if values.size(-1) != perm.numel():
        raise ValueError(
            f"values has {values.size(-1)} edges in its last dimension, perm has {perm.numel()}"
        )
    return values.index_select(values.dim() - 1, perm).contiguous()
