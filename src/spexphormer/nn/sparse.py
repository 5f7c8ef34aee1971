r"""Memory-lean edge-list kernels in plain PyTorch (no torch-scatter / pyg-lib).

The attention on an edge list needs three operations over :math:`E` edges:

* :func:`gather_dot`: :math:`z_e^h = \langle a_{i_e}^h, b_{j_e}^h \rangle` (logits);
* :func:`edge_softmax`: softmax of :math:`z` over each destination's incoming edges;
* :func:`gather_scatter`: :math:`\mathrm{out}_v^h = \sum_{e: \mathrm{dst}(e)=v} \alpha_e^h
  b_{\mathrm{src}(e)}^h` (messages).

Written naively with autograd, each gather of node rows to edges is an :math:`(E, D)` tensor that
autograd keeps for the backward pass (five of them per Exphormer layer). Here each operation is a
:class:`torch.autograd.Function` that saves only node tensors, indices and :math:`(E, H)` tensors,
recomputes the gathers in the backward pass, and processes the edges in chunks, so the transient
:math:`(E, D)` memory is bounded by a chunk (:data:`~spexphormer.nn.chunks.EDGE_CHUNK_FLOATS` floats). Memory per layer is then
:math:`O(E \cdot H + N \cdot D)` plus one chunk. Sums over edges are
``index_put_(accumulate=True)`` on CPU (serial, deterministic) and ``index_add_`` on CUDA (atomic,
so not bit-reproducible). The functions are differentiable once (no double backward).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from spexphormer.nn.chunks import edge_chunks

__all__ = ["edge_softmax", "gather_dot", "gather_scatter", "type_rows"]


def type_rows(table: Tensor, edge_type: Tensor) -> Tensor:
    """``table[edge_type]``: each edge's row of a per-type table. Shapes: ``[T, H], [E] -> [E, H]``.

    The backward sums :math:`E` gradients into :math:`T` (3) rows. On CUDA the backward of
    advanced indexing adds the duplicates of one row one after another, while the embedding
    backward reduces them in parallel: measured on an H200 with 51M edges, 4.43 s against 0.067 s
    (a 1M-node stage-1 step: 14.7 s -> 0.68 s; docs/gpu.md). On CPU indexing is the
    faster of the two (1.6x at 5M edges, one thread).
    """
    if edge_type.device.type == "cpu":
        return table[edge_type]
    return torch.nn.functional.embedding(edge_type, table)


def _add_rows(out: Tensor, index: Tensor, src: Tensor) -> Tensor:
    """``out[index[e]] += src[e]`` in place. On CPU ``index_put_(accumulate=True)`` runs
    serially (deterministic, and no OpenMP regions: ``index_add_`` goes through a parallel
    sort-based scatter that is 3-10x slower on an oversubscribed machine); on GPUs
    ``index_add_`` (atomics)."""
    if out.device.type == "cpu":
        return out.index_put_((index,), src, accumulate=True)
    return out.index_add_(0, index, src)


class _GatherDot(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, ia: Tensor, ib: Tensor) -> Tensor:
        E, (H, d) = ia.numel(), a.shape[1:]
        out = a.new_empty(E, H)
        for s, t in edge_chunks(E, H * d, ia.device):
            out[s:t] = (a.index_select(0, ia[s:t]) * b.index_select(0, ib[s:t])).sum(-1)
        ctx.save_for_backward(a, b, ia, ib)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        a, b, ia, ib = ctx.saved_tensors
        E, (H, d) = ia.numel(), a.shape[1:]
        grad_a = torch.zeros_like(a) if ctx.needs_input_grad[0] else None
        grad_b = torch.zeros_like(b) if ctx.needs_input_grad[1] else None
        for s, t in edge_chunks(E, H * d, ia.device):
            g = grad[s:t].unsqueeze(-1)  # [c, H, 1]
            if grad_a is not None:
                _add_rows(grad_a, ia[s:t], g * b.index_select(0, ib[s:t]))
            if grad_b is not None:
                _add_rows(grad_b, ib[s:t], g * a.index_select(0, ia[s:t]))
        return grad_a, grad_b, None, None


def gather_dot(a: Tensor, b: Tensor, ia: Tensor, ib: Tensor) -> Tensor:
    r"""Per-edge, per-head dot product of gathered rows.

    .. math::
        z_e^h = \sum_{c=1}^{d} a_{i_e, h, c}\; b_{j_e, h, c}

    Args:
        a (Tensor): first row table.
        b (Tensor): second row table.
        ia (LongTensor): row of ``a`` for every edge.
        ib (LongTensor): row of ``b`` for every edge.

    Shapes:
        - **a**: :math:`(N_a, H, d)`; **b**: :math:`(N_b, H, d)`; **ia**, **ib**: :math:`(E,)`
        - **output**: :math:`(E, H)`
    """
    return _GatherDot.apply(a, b, ia, ib)


class _GatherScatter(torch.autograd.Function):
    @staticmethod
    def forward(ctx, alpha: Tensor, b: Tensor, src: Tensor, dst: Tensor, num_nodes: int) -> Tensor:
        E, (H, d) = src.numel(), b.shape[1:]
        out = b.new_zeros(num_nodes, H, d)
        for s, t in edge_chunks(E, H * d, src.device):
            _add_rows(out, dst[s:t], alpha[s:t].unsqueeze(-1) * b.index_select(0, src[s:t]))
        ctx.save_for_backward(alpha, b, src, dst)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        alpha, b, src, dst = ctx.saved_tensors
        E, (H, d) = src.numel(), b.shape[1:]
        grad_alpha = alpha.new_empty(E, H) if ctx.needs_input_grad[0] else None
        grad_b = torch.zeros_like(b) if ctx.needs_input_grad[1] else None
        for s, t in edge_chunks(E, H * d, src.device):
            g = grad.index_select(0, dst[s:t])  # [c, H, d]
            if grad_alpha is not None:
                grad_alpha[s:t] = (g * b.index_select(0, src[s:t])).sum(-1)
            if grad_b is not None:
                _add_rows(grad_b, src[s:t], alpha[s:t].unsqueeze(-1) * g)
        return grad_alpha, grad_b, None, None, None


def gather_scatter(alpha: Tensor, b: Tensor, src: Tensor, dst: Tensor, num_nodes: int) -> Tensor:
    r"""Weighted sum of source rows into destination rows.

    .. math::
        \mathrm{out}_{v, h} = \sum_{e:\ \mathrm{dst}(e) = v} \alpha_e^h\, b_{\mathrm{src}(e), h}

    Args:
        alpha (Tensor): edge weights.
        b (Tensor): source rows (values).
        src (LongTensor): source row of every edge.
        dst (LongTensor): destination row of every edge, in ``[0, num_nodes)``.
        num_nodes (int): number of output rows.

    Shapes:
        - **alpha**: :math:`(E, H)`; **b**: :math:`(N_b, H, d)`; **src**, **dst**: :math:`(E,)`
        - **output**: :math:`(\text{num\_nodes}, H, d)`
    """
    return _GatherScatter.apply(alpha, b, src, dst, num_nodes)


class _EdgeSoftmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: Tensor, index: Tensor, num_nodes: int) -> Tensor:
        H = logits.size(1)
        # Rows of nodes without in-edges keep their initial 0 (include_self=False ignores it).
        node_max = logits.new_zeros(num_nodes, H).scatter_reduce_(
            0, index.view(-1, 1).expand(-1, H), logits, reduce="amax", include_self=False
        )
        alpha = (logits - node_max.index_select(0, index)).exp_()  # [E, H]
        denom = _add_rows(logits.new_zeros(num_nodes, H), index, alpha)  # [N, H]
        alpha.div_(denom.index_select(0, index))
        ctx.num_nodes = num_nodes
        ctx.save_for_backward(alpha, index)
        return alpha

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        alpha, index = ctx.saved_tensors
        ag = alpha * grad  # [E, H]
        total = _add_rows(ag.new_zeros(ctx.num_nodes, ag.size(1)), index, ag)  # [N, H]
        return ag - alpha * total.index_select(0, index), None, None


def edge_softmax(logits: Tensor, index: Tensor, num_nodes: int) -> Tensor:
    r"""Softmax of edge logits over each destination node's incoming edges.

    .. math::
        \alpha_{e} = \frac{\exp(z_e - m_{v})}{\sum_{e' : \mathrm{dst}(e') = v} \exp(z_{e'} - m_v)},
        \qquad m_v = \max_{e' : \mathrm{dst}(e') = v} z_{e'},

    where :math:`v = \mathrm{dst}(e)`. Subtracting the per-destination maximum :math:`m_v` (a
    ``scatter_reduce`` with ``"amax"``) keeps it finite for any finite logits. The backward pass is
    the exact softmax Jacobian-vector product
    :math:`\partial z_e = \alpha_e (g_e - \sum_{e' \to v} \alpha_{e'} g_{e'})`, which saves only
    :math:`\alpha`.

    Args:
        logits (Tensor): edge logits.
        index (LongTensor): destination node of every edge, in ``[0, num_nodes)``.
        num_nodes (int): number of nodes :math:`N`.

    Shapes:
        - **logits**: :math:`(E, H)` or :math:`(E,)`
        - **index**: :math:`(E,)`
        - **output**: same as ``logits``; sums to 1 over each node's incoming edges (nodes
          without incoming edges simply receive nothing).
    """
    if logits.dim() == 1:
        return _EdgeSoftmax.apply(logits.unsqueeze(-1), index, num_nodes).squeeze(-1)
    return _EdgeSoftmax.apply(logits, index, num_nodes)
