r"""Compact storage of the augmented graph: int32 node ids, int8 edge types, int64 offsets.

At a million nodes the augmented graph has ~51M edges; stored as int64 ``edge_index`` and
``edge_type`` it takes 1.2 GB, as int32 ids and int8 types 0.46 GB. Every consumer reads it
through views of these arrays (the fused CSR kernels, the stage-2 sampler); the edge-list
attention layers widen indices to int64 themselves, where PyTorch's scatter kernels need it.

:func:`group_edges` is the stable counting sort by destination that builds the compact graph
without an int64 permutation of all edges (:math:`O(E + N)`; the counting pass is the shared
:func:`~spexphormer.graph.csr.bucket_offsets`, the fill is serial: it runs once per graph).
"""

from __future__ import annotations

import torch
from numba import njit
from torch import Tensor

from spexphormer.graph.csr import bucket_offsets, num_parts

__all__ = ["index_dtype", "type_dtype", "narrow_indices", "narrow_types", "group_edges", "destinations"]

INT32_LIMIT = 2**31 - 1


def index_dtype(count: int) -> torch.dtype:
    """int32 when every index below ``count`` fits, else int64."""
    return torch.int32 if count <= INT32_LIMIT else torch.int64


def type_dtype(num_types: int) -> torch.dtype:
    """int8 for up to 127 edge types, else int32."""
    return torch.int8 if num_types <= 127 else torch.int32


def narrow_indices(index: Tensor, num_nodes: int) -> Tensor:
    """``index`` (node ids in ``[0, num_nodes)``) in :func:`index_dtype`; no copy if it already is."""
    return index.to(index_dtype(num_nodes))


def narrow_types(edge_type: Tensor, num_types: int) -> Tensor:
    """``edge_type`` (values in ``[0, num_types)``) in :func:`type_dtype`; no copy if it already is."""
    return edge_type.to(type_dtype(num_types))


@njit(cache=True)
def _fill_grouped(src, dst, types, ptr, out_src, out_type):
    """Each edge's source and type at its destination's next free position (stable)."""
    num_edges = dst.shape[0]
    fill = ptr[:-1].copy()
    for e in range(num_edges):
        v = dst[e]
        p = fill[v]
        out_src[p] = src[e]
        out_type[p] = types[e]
        fill[v] = p + 1


@njit(cache=True)
def _destinations(ptr, out):
    for v in range(ptr.shape[0] - 1):
        for e in range(ptr[v], ptr[v + 1]):
            out[e] = v


def group_edges(src: Tensor, dst: Tensor, edge_type: Tensor, num_nodes: int,
                out_src: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    r"""Stable sort of edges by destination: sources and types in grouped order, and the offsets.

    The in-edges of node :math:`v` are positions ``ptr[v]:ptr[v+1]`` of the outputs, in their
    input order (the result of :func:`~spexphormer.graph.csr.group_by_destination`
    applied to the edges, without materialising its int64 permutation).

    Args:
        src (Tensor): source of every edge, any integer dtype (kept).
        dst (Tensor): destination of every edge, in ``[0, num_nodes)`` (checked).
        edge_type (Tensor): type of every edge (dtype kept).
        num_nodes (int): :math:`N`.
        out_src (Tensor, optional): where to write the grouped sources (e.g. a row of a
            preallocated ``edge_index``); same dtype and length as ``src``.

    Returns:
        (Tensor, Tensor, Tensor): grouped ``src`` :math:`(E,)`, grouped ``edge_type``
        :math:`(E,)`, ``ptr`` :math:`(N + 1,)` int64.
    """
    if not src.shape == dst.shape == edge_type.shape or src.dim() != 1:
        raise ValueError(f"src, dst and edge_type must be 1-D of one length, got {tuple(src.shape)}, "
                         f"{tuple(dst.shape)}, {tuple(edge_type.shape)}")
    d = dst.detach().cpu().contiguous().numpy()
    if d.size and (int(d.min()) < 0 or int(d.max()) >= num_nodes):
        raise ValueError(f"destinations outside [0, {num_nodes}): min {d.min()}, max {d.max()}")
    out_src = torch.empty_like(src) if out_src is None else out_src
    if out_src.shape != src.shape or out_src.dtype != src.dtype or not out_src.is_contiguous():
        raise ValueError("out_src must be a contiguous tensor of src's shape and dtype")
    out_type = torch.empty_like(edge_type)
    ptr, _ = bucket_offsets(d, int(num_nodes), num_parts(num_nodes))
    _fill_grouped(src.detach().cpu().contiguous().numpy(), d, edge_type.detach().cpu().contiguous().numpy(), ptr,
                  out_src.numpy(), out_type.numpy())
    return out_src, out_type, torch.from_numpy(ptr)


def destinations(ptr: Tensor, out: Tensor) -> Tensor:
    """Fills ``out`` with the destination of every grouped edge: ``out[ptr[v]:ptr[v+1]] = v``."""
    if out.numel() != int(ptr[-1]) or not out.is_contiguous():
        raise ValueError(f"out must be contiguous with {int(ptr[-1])} entries")
    _destinations(ptr.numpy(), out.numpy())
    return out
