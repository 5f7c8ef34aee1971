r"""Fused CSR kernels of the stage-1 score attention (CPU, numba).

The augmented graph is stored grouped by destination with CSR offsets (``AugmentedGraph.ptr``),
so the attention of :class:`~spexphormer.nn.attention.ScoreAttention` is, per destination
:math:`i` and head :math:`h`, a segment softmax and a segment sum over the slice
``ptr[i]:ptr[i+1]``:

.. math::
    z_e = \mathrm{clamp}\big((\langle q_i, k_{j_e}\rangle\, a_{t_e} + b_{t_e}) / T,\ \pm c\big),
    \qquad \alpha_e = \frac{\exp(z_e - m_i)}{\sum_{e' \in \mathrm{ptr}[i]:\mathrm{ptr}[i+1]}
    \exp(z_{e'} - m_i)}, \qquad o_i = \sum_{e} \alpha_e\, v_{j_e},

(:math:`q` already scaled by :math:`1/\sqrt{d_h}`, :math:`v` already L2-normalised). The forward
kernel computes this in one parallel pass over destinations and keeps, for the backward pass,
only node-sized tensors (:math:`q`, :math:`(k, v)`, :math:`o` and the normaliser :math:`Z`):
the logits and :math:`\alpha` are recomputed from them. The backward pass has two kernels, both
parallel over nodes and free of atomics: one over destinations (:math:`\partial q_i` and the
gradients of the per-type scale and shift), one over sources (:math:`\partial k_j`,
:math:`\partial v_j`), which reads the same edges grouped by source (:class:`CSRGraph`, built
once per graph). The only :math:`(E, H)` tensor is the returned :math:`\alpha` (not
differentiable: stage 1 exports it detached); nothing of size :math:`(E, d)` exists, and
nothing per edge is kept for the backward pass.

The graph may be bipartite (:meth:`CSRGraph.from_edges` with ``num_sources`` and
``dst_offset``): queries, outputs and :math:`Z` then have one row per destination of the CSR, keys
and values one per source. A rank of the sharded stage 1 uses this for its shard's destinations
over all sources, so that nothing it holds per destination has :math:`N` rows.

Indices are int32 where they fit (sources, destinations) and the edge type is int8. CUDA tensors
are not handled here: :class:`~spexphormer.nn.attention.ScoreAttention` falls back to its
edge-list path (see :func:`supports`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

import spexphormer.utils.numba_threads  # noqa: F401  (before any parallel kernel)
from spexphormer.graph.csr import bucket_offsets, num_parts
from spexphormer.nn import csr_kernels as K

__all__ = ["CSRGraph", "csr_score_attention", "supports"]


def _index_dtype(n: int):
    """Node ids below ``n``: int32 when they fit."""
    return np.int32 if n <= 2**31 - 1 else np.int64


@dataclass
class CSRGraph:
    """A destination-grouped edge list with its source-grouped permutation (numpy, CPU).

    ``N`` destinations (rows of the queries) and ``N_s`` sources (rows of the keys and values);
    ``N_s = N`` unless built as a bipartite graph (:meth:`from_edges`).

    Shapes:
        ptr: [N + 1] int64 offsets; in-edges of ``i`` are positions ``ptr[i]:ptr[i+1]``
        src: [E] source of every edge (int32 when N_s fits)
        edge_type: [E] int8 (int32 past 127 types)
        src_ptr: [N_s + 1] int64 offsets over sources
        src_dst: [E] destination of every edge, the edges grouped by source
        src_type: [E] their types
    """

    ptr: np.ndarray
    src: np.ndarray
    edge_type: np.ndarray
    src_ptr: np.ndarray
    src_dst: np.ndarray
    src_type: np.ndarray
    num_types: int

    @property
    def num_nodes(self) -> int:
        """Destinations :math:`N`."""
        return self.ptr.shape[0] - 1

    @property
    def num_sources(self) -> int:
        """Sources :math:`N_s`."""
        return self.src_ptr.shape[0] - 1

    @property
    def num_edges(self) -> int:
        return self.src.shape[0]

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.ptr, self.src, self.edge_type, self.src_ptr,
                                      self.src_dst, self.src_type))

    @classmethod
    def from_edges(cls, edge_index: Tensor, edge_type: Tensor, ptr: Tensor, num_types: int | None = None,
                   num_sources: int | None = None, dst_offset: int = 0) -> "CSRGraph":
        """From an edge list already grouped by destination with offsets ``ptr``.

        Args:
            num_sources: sources (key and value rows); default: as many as destinations.
            dst_offset: the first destination's id in ``edge_index``: destination ``i`` of the CSR
                is node ``dst_offset + i`` (sources keep their ids).

        Raises:
            ValueError: if the edges are not grouped by destination as ``ptr`` says.
        """
        n = int(ptr.numel()) - 1
        n_src = n if num_sources is None else int(num_sources)
        E = int(edge_index.size(1))
        ptr_np = np.ascontiguousarray(ptr.detach().cpu().numpy(), dtype=np.int64)
        if ptr_np[0] != 0 or ptr_np[-1] != E or (np.diff(ptr_np) < 0).any():
            raise ValueError(f"ptr is not a CSR offset array over {E} edges")
        if E and not K.grouped_as(ptr_np, edge_index[1].detach().cpu().numpy(), int(dst_offset)):
            raise ValueError("edge_index is not grouped by destination as ptr says")
        idx = _index_dtype(max(n, n_src))
        # int32 sources and int8 types of a compact AugmentedGraph are used in place, not copied
        src = np.ascontiguousarray(edge_index[0].detach().cpu().numpy(), dtype=idx)
        types = edge_type.detach().cpu().numpy()
        top = int(types.max()) + 1 if E else 1
        num_types = int(num_types if num_types is not None else top)
        if E and (types.min() < 0 or top > num_types):
            raise ValueError(f"edge types must lie in [0, {num_types})")
        if E and (src.min() < 0 or src.max() >= n_src):
            raise ValueError(f"edge sources must lie in [0, {n_src})")
        types = np.ascontiguousarray(types, dtype=np.int8 if num_types <= 127 else np.int32)
        # The same edges grouped by source (stable), written straight into compact arrays.
        src_ptr, bounds = bucket_offsets(src, n_src, num_parts(n_src))
        src_dst, src_type = np.empty(E, idx), np.empty(E, types.dtype)
        K.fill_by_source(ptr_np, src, types, src_ptr, bounds, src_dst, src_type)
        return cls(ptr_np, src, types, src_ptr, src_dst, src_type, num_types)

    @classmethod
    def from_graph(cls, graph) -> "CSRGraph":
        """From an :class:`~spexphormer.graph.AugmentedGraph`."""
        from spexphormer.graph.augment import NUM_EDGE_TYPES
        return cls.from_edges(graph.edge_index, graph.edge_type, graph.ptr, NUM_EDGE_TYPES)


def supports(x: Tensor) -> bool:
    """Whether the fused kernels handle tensors like ``x`` (CPU, float32 or float64)."""
    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)


def _np(t: Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


class _CSRScoreAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, scale, bias, csr: CSRGraph, temperature: float, clamp: float):
        n, H, d = q.shape
        dt = q.dtype
        q = q.contiguous()
        kv = torch.cat([k, v], dim=-1)  # [N_s, H, 2d]: one record per source
        scale, bias = scale.detach().to(dt).contiguous(), bias.detach().to(dt).contiguous()
        alpha = torch.empty(csr.num_edges, H, dtype=dt)
        out = torch.empty(n, H, d, dtype=dt)
        denom = torch.empty(n, H, dtype=torch.float64)
        K.csr_forward(csr.ptr, csr.src, csr.edge_type, _np(q), _np(kv), _np(scale), _np(bias),
                      1.0 / float(temperature), float(clamp), alpha.numpy(), out.numpy(), denom.numpy())
        ctx.csr, ctx.inv_temp, ctx.clamp = csr, 1.0 / float(temperature), float(clamp)
        ctx.save_for_backward(q, kv, scale, bias, out, denom)
        ctx.mark_non_differentiable(alpha)
        return out, alpha

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, _grad_alpha):
        q, kv, scale, bias, out, denom = ctx.saved_tensors
        csr, dt = ctx.csr, q.dtype
        n, H, d = q.shape
        grad_out = grad_out.to(dt)
        g_dot_o = (grad_out * out).sum(-1, keepdim=True)  # [N, H, 1]: per destination
        rec = torch.cat([q, grad_out, denom.reciprocal().to(dt).unsqueeze(-1), g_dot_o], dim=-1)
        blocks = max(1, -(-n // K.BLOCK))
        grad_q = torch.empty_like(q)
        n_src = kv.size(0)
        grad_k, grad_v = torch.empty(n_src, H, d, dtype=dt), torch.empty(n_src, H, d, dtype=dt)
        gs_parts = np.zeros((blocks,) + tuple(scale.shape), dtype=np.float64)
        gb_parts = np.zeros_like(gs_parts)
        args = (_np(scale), _np(bias), ctx.inv_temp, ctx.clamp, _np(rec))
        K.csr_backward_dst(csr.ptr, csr.src, csr.edge_type, _np(q), _np(kv), *args,
                           grad_q.numpy(), gs_parts, gb_parts)
        K.csr_backward_src(csr.src_ptr, csr.src_dst, csr.src_type, _np(kv), *args,
                           grad_k.numpy(), grad_v.numpy())
        grad_scale = torch.from_numpy(gs_parts.sum(0)).to(dt)
        grad_bias = torch.from_numpy(gb_parts.sum(0)).to(dt)
        return grad_q, grad_k, grad_v, grad_scale, grad_bias, None, None, None


def csr_score_attention(
    q: Tensor, k: Tensor, v: Tensor, type_scale: Tensor, type_bias: Tensor, csr: CSRGraph,
    temperature: float = 1.0, clamp: float = 8.0,
) -> tuple[Tensor, Tensor]:
    r"""Fused score attention on a destination-grouped graph (the math is in the module docstring).

    Args:
        q (Tensor): queries, already scaled by :math:`1/\sqrt{d_h}`.
        k (Tensor): keys.
        v (Tensor): values (L2-normalised by the caller).
        type_scale (Tensor): per edge type and head scale :math:`a_t`.
        type_bias (Tensor): per edge type and head shift :math:`b_t`.
        csr (CSRGraph): the graph, from :meth:`CSRGraph.from_graph`.
        temperature (float): :math:`T`.
        clamp (float): :math:`c`.

    Shapes:
        - **q**: :math:`(N, H, d)` (destinations); **k**, **v**: :math:`(N_s, H, d)` (sources);
          **type_scale**, **type_bias**: :math:`(T_e, H)`
        - **output**: ``(out, alpha)``: :math:`(N, H, d)` and :math:`(E, H)` in the graph's edge
          order; ``alpha`` carries no gradient.
    """
    n = q.size(0)
    if n != csr.num_nodes:
        raise ValueError(f"q has {n} rows but the CSR graph has {csr.num_nodes} destinations")
    if k.size(0) != csr.num_sources or v.size(0) != csr.num_sources:
        raise ValueError(f"k and v have {k.size(0)} and {v.size(0)} rows but the CSR graph has "
                         f"{csr.num_sources} sources")
    if not 0 < clamp <= K.MAX_CLAMP:
        raise ValueError(f"the fused kernels need a clamp bound in (0, {K.MAX_CLAMP}], got {clamp}")
    if type_scale.size(0) < csr.num_types:
        raise ValueError(f"{type_scale.size(0)} edge types in type_scale, the graph has {csr.num_types}")
    return _CSRScoreAttention.apply(q, k, v, type_scale, type_bias, csr, temperature, clamp)
