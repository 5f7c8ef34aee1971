r"""Memory-lean fixed-degree attention (stage 2), as one autograd function.

Every output row :math:`i` attends to exactly :math:`k` source rows ``index[i]``. Written with
plain autograd, the gathered keys and values :math:`(n, k, H, d_h)` are kept for the backward
pass: :math:`2k` times the size of the layer's node tensors, and most of a stage-2 step's memory.
:class:`_NeighbourAttention` keeps only node tensors and the :math:`(n, H, k)` attention, and
re-gathers keys and values chunk by chunk in the backward pass (the same idea as the edge-list
kernels of :mod:`spexphormer.nn.sparse`).

For row :math:`i`, head :math:`h`, slot :math:`s` with source :math:`j = \mathrm{index}_{is}` of
type :math:`t = \mathrm{type}_{is}`:

.. math::
    z_{is}^h = \mathrm{clamp}\big(\langle \tilde q_{i,t}^h, k_j^h\rangle + b_{is}^h,\ \pm c\big),
    \qquad \alpha_{is}^h = \operatorname{softmax}_s z_{is}^h, \qquad
    \mathrm{out}_i^h = \sum_s \alpha_{is}^h v_j^h,

where :math:`\tilde q_{i,t} = q_i \odot E1_t` is the query gated by each edge type (times
:math:`1/\sqrt{d_h}` when the layer scales its logits; computed outside, :math:`n T D` floats)
and :math:`b` the per-slot bias :math:`E2_t`. An optional boolean ``mask`` removes slots from the
softmax (:math:`\alpha = 0` there; every row needs one slot kept): the padding slots of
per-type sampled tables (:mod:`spexphormer.sampling.typed`).
"""

from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from spexphormer.nn.chunks import neighbour_chunks

def _logits(qe: Tensor, keys: Tensor, index: Tensor, pick: Tensor) -> Tensor:
    """``<qe[i, type], keys[index[i, s]]>`` per head. Shapes: -> [n, H, k]."""
    n, k = index.shape
    kk = keys.index_select(0, index.reshape(-1)).view(n, k, *keys.shape[1:])  # [n, k, H, d]
    by_type = torch.einsum("nthd,nkhd->nhtk", qe, kk)  # [n, H, T, k]
    return by_type.gather(2, pick).squeeze(2)  # [n, H, k]


class _NeighbourAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, qe: Tensor, keys: Tensor, vals: Tensor, bias: Tensor, index: Tensor,
                edge_type: Tensor, clamp: float, mask: Tensor | None) -> Tuple[Tensor, Tensor]:
        n, k = index.shape
        H, d = keys.shape[1:]
        alpha = qe.new_empty(n, H, k)
        out = qe.new_empty(n, H, d)
        inside = torch.empty(n, H, k, dtype=torch.bool, device=qe.device)
        for s, t in neighbour_chunks(n, k * H * d):
            pick = edge_type[s:t].view(t - s, 1, 1, k).expand(t - s, H, 1, k)
            z = _logits(qe[s:t], keys, index[s:t], pick) + bias[s:t]  # [c, H, k]
            inside[s:t] = z.abs() <= clamp  # clamp passes the gradient only within [-c, c]
            z = z.clamp(-clamp, clamp)
            if mask is not None:  # masked slots get alpha = 0, hence no gradient either
                z = z.masked_fill(~mask[s:t].unsqueeze(1), float("-inf"))
            a = torch.softmax(z, dim=-1)
            alpha[s:t] = a
            vv = vals.index_select(0, index[s:t].reshape(-1)).view(t - s, k, H, d)
            out[s:t] = torch.einsum("nhk,nkhd->nhd", a, vv)
        ctx.save_for_backward(qe, keys, vals, index, edge_type, alpha, inside)
        ctx.mark_non_differentiable(alpha)
        return out, alpha

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor, _grad_alpha: Tensor):
        qe, keys, vals, index, edge_type, alpha, inside = ctx.saved_tensors
        n, k = index.shape
        T, H, d = qe.shape[1:]
        grad_qe = torch.zeros_like(qe)
        grad_keys = torch.zeros_like(keys)
        grad_vals = torch.zeros_like(vals)
        grad_bias = torch.empty_like(alpha)
        for s, t in neighbour_chunks(n, k * H * d):
            c, flat, g = t - s, index[s:t].reshape(-1), grad_out[s:t]  # g: [c, H, d]
            a = alpha[s:t]  # [c, H, k]
            vv = vals.index_select(0, flat).view(c, k, H, d)
            grad_vals.index_add_(0, flat, torch.einsum("nhk,nhd->nkhd", a, g).reshape(c * k, H, d))
            grad_a = torch.einsum("nhd,nkhd->nhk", g, vv)
            grad_z = a * (grad_a - (a * grad_a).sum(-1, keepdim=True))  # softmax backward
            grad_z = grad_z * inside[s:t]
            grad_bias[s:t] = grad_z
            # scatter each slot's gradient to its edge type: [c, H, T, k]
            one_hot = torch.nn.functional.one_hot(edge_type[s:t], T).to(grad_z.dtype)  # [c, k, T]
            grad_by_type = grad_z.unsqueeze(2) * one_hot.permute(0, 2, 1).unsqueeze(1)
            kk = keys.index_select(0, flat).view(c, k, H, d)
            grad_qe[s:t] = torch.einsum("nhtk,nkhd->nthd", grad_by_type, kk)
            grad_keys.index_add_(0, flat, torch.einsum("nhtk,nthd->nkhd", grad_by_type, qe[s:t]).reshape(c * k, H, d))
        return grad_qe, grad_keys, grad_vals, grad_bias, None, None, None, None


def neighbour_attention(qe: Tensor, keys: Tensor, vals: Tensor, bias: Tensor, index: Tensor,
                        edge_type: Tensor, clamp: float = 8.0, mask: Tensor | None = None) -> Tuple[Tensor, Tensor]:
    r"""Fixed-degree multi-head attention that keeps no :math:`(n, k, H, d_h)` tensor for backward.

    Args:
        qe (Tensor): queries gated by every edge type (and scaled, if the layer scales logits).
        keys (Tensor): key rows of the sources.
        vals (Tensor): value rows of the sources.
        bias (Tensor): per-slot logit bias.
        index (LongTensor): source row of every slot.
        edge_type (LongTensor): edge type of every slot.
        clamp (float): logits are clamped to :math:`[-c, c]`.
        mask (BoolTensor, optional): slots that take part in the softmax (default: all).

    Shapes:
        - **qe**: :math:`(n, T, H, d_h)`; **keys**, **vals**: :math:`(n_{in}, H, d_h)`
        - **bias**: :math:`(n, H, k)`; **index**, **edge_type**, **mask**: :math:`(n, k)`
        - **output**: ``(out, alpha)``: :math:`(n, H, d_h)` and :math:`(n, H, k)` (alpha carries
          no gradient)
    """
    return _NeighbourAttention.apply(qe, keys, vals, bias, index, edge_type, float(clamp), mask)
