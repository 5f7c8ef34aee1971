r"""Sparse attention primitives shared by both stages.

Direction convention: edge :math:`u \to v` is column ``(u, v)`` of ``edge_index``; the destination
:math:`v` (the query) attends to the source :math:`u` (key and value), and the softmax runs over
each node's incoming edges. ``edge_type`` is 0 for graph edges, 1 for expander edges and 2 for
self-loops.

Three attention modules live here:

* :class:`ScoreAttention`: the narrow, one-head attention of the stage-1 Attention Score
  Estimator (scaled and shifted per edge type, temperature, L2-normalised values).
* :class:`EdgeListAttention`: the Exphormer attention on an edge list (full-batch Exphormer and the
  per-edge reference of the tests).
* :class:`NeighbourAttention`: the same attention on a fixed-degree neighbour table
  ``[n_out, k]`` (stage 2). It shares its parameter layout with :class:`EdgeListAttention`, so a
  ``state_dict`` can be copied from one to the other.

The edge-list forms use the kernels of :mod:`spexphormer.nn.sparse`: autograd keeps only node
tensors and :math:`(E, H)` tensors, and the :math:`(E, d)` gathers are recomputed chunk by chunk
in the backward pass (no dense :math:`N \times N` matrix, no per-edge Python loop).
"""

from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spexphormer.graph.augment import NUM_EDGE_TYPES
from spexphormer.nn.csr_attention import CSRGraph, csr_score_attention, supports
from spexphormer.nn.neighbour_kernel import neighbour_attention
from spexphormer.nn.sparse import edge_softmax, gather_dot, gather_scatter, type_rows
from spexphormer.nn.type_terms import TypeTerms

#: How a wide layer pairs heads with neighbours: "per-head" (the method) or "reference" (the
#: authors' reshape, a defect kept for comparison).
HEAD_PAIRINGS = ("per-head", "reference")

__all__ = [
    "HEAD_PAIRINGS",
    "ScoreAttention",
    "EdgeListAttention",
    "NeighbourAttention",
    "neighbour_table_to_edge_list",
]


def _check_heads(dim: int, heads: int) -> int:
    if heads < 1 or dim % heads != 0:
        raise ValueError(f"dim={dim} must be a positive multiple of heads={heads}")
    return dim // heads


class ScoreAttention(nn.Module):
    r"""Attention of the Attention Score Estimator (stage 1, the "ASE" form).

    For an edge :math:`j \to i` of type :math:`t` and head :math:`h`:

    .. math::
        z_{ij}^h = \mathrm{clamp}\Big(\big(\tfrac{\langle q_i^h, k_j^h\rangle}{\sqrt{d_h}}\, s_t^h
            + b_t^h\big) / T,\ -c_{\max},\ c_{\max}\Big), \qquad
        s_t^h = \textstyle\sum_{c \in \text{head } h} g_{t,c},
        \alpha_{ij}^h = \operatorname{softmax}_{j \in \mathcal{N}^-(i)} z_{ij}^h,

    .. math::
        \mathrm{out}_i^h = \sum_{j} \alpha_{ij}^h \; c\, \frac{v_j^h}{\lVert v_j^h \rVert_2},

    with :math:`q = W_Q x`, :math:`k = W_K x`, :math:`v = W_V x`, the per-type gate :math:`g` and
    shift :math:`b` of :class:`~spexphormer.nn.type_terms.TypeTerms` (the scale :math:`s_t^h` sums
    the gate over the head's channels, as the authors' code does; in the ``"table"`` form the gate
    is one learned scalar per type and head, starting at 1), a temperature :math:`T`, and a
    learnable value scale :math:`c` (init ``value_scale``). Normalising the values makes the
    attention scores, not the value magnitudes, carry the signal. Heads are concatenated.

    Given ``csr`` (a :class:`~spexphormer.nn.csr_attention.CSRGraph` of the same edges) and CPU
    tensors, the attention runs in the fused CSR kernels of :mod:`spexphormer.nn.csr_attention`
    (same function; ``alpha`` is then returned without gradient); otherwise on the edge list.
    With a bipartite ``csr`` (:meth:`~spexphormer.nn.csr_attention.CSRGraph.from_edges` with
    ``dst_offset``), ``x_dst`` holds the rows of its destinations: the queries and the output
    have only those rows, the keys and values one per row of ``x``.

    Args:
        dim (int): node feature width :math:`D`.
        heads (int, optional): number of heads :math:`H` (:math:`D` must be a multiple).
            (default: ``1``)
        num_edge_types (int, optional): number of edge types. (default: ``NUM_EDGE_TYPES`` = 3)
        clamp (float, optional): logits are clamped to :math:`[-c_{\max}, c_{\max}]`.
            (default: ``8.0``)
        value_scale (float, optional): initial value of :math:`c`. (default: ``0.25``)
        bias (bool, optional): whether the Q/K/V maps have a bias. (default: ``False``)
        type_terms (str, optional): parametrisation of the per-type terms, ``"embedding"`` (the
            authors') or ``"table"``. (default: ``"embedding"``)
        type_embedding (nn.Embedding, optional): the model's shared type embedding.
            (default: ``None``: a layer of its own)

    Shapes:
        - **x**: :math:`(N, D)`; **edge_index**: :math:`(2, E)`; **edge_type**: :math:`(E,)`;
          **x_dst**: :math:`(N_d, D)` (then out has :math:`N_d` rows)
        - **output**: ``(out, alpha)`` with out :math:`(N, D)` and alpha :math:`(E, H)`; out
          alone if ``return_attention`` is False (the estimator's attention exists for its
          scores, so they are returned by default).

    State dict: ``Q.weight``, ``K.weight``, ``V.weight`` (and ``.bias`` if ``bias``),
    ``types.*`` (:class:`~spexphormer.nn.type_terms.TypeTerms`), ``value_scale`` :math:`()`.
    """

    def __init__(
        self,
        dim: int,
        heads: int = 1,
        num_edge_types: int = NUM_EDGE_TYPES,
        clamp: float = 8.0,
        value_scale: float = 0.25,
        bias: bool = False,
        type_terms: str = "embedding",
        type_embedding: Optional[nn.Embedding] = None,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.heads = heads
        self.head_dim = _check_heads(dim, heads)
        self.num_edge_types = num_edge_types
        self.clamp = float(clamp)
        self.init_value_scale = float(value_scale)
        self.Q = nn.Linear(dim, dim, bias=bias)
        self.K = nn.Linear(dim, dim, bias=bias)
        self.V = nn.Linear(dim, dim, bias=bias)
        # The authors' gate is D wide and summed per head; a table needs one scalar per head.
        gate_dim = dim if type_terms == "embedding" else heads
        self.types = TypeTerms(gate_dim, heads, num_edge_types, type_terms, type_embedding)
        self.value_scale = nn.Parameter(torch.empty(()))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in (self.Q, self.K, self.V):
            lin.reset_parameters()
        self.types.reset_parameters()
        nn.init.constant_(self.value_scale, self.init_value_scale)

    def type_scale_and_bias(self) -> Tuple[Tensor, Tensor]:
        """The logit scale :math:`s` and shift :math:`b` per edge type and head, :math:`(T_e, H)` each."""
        gate, bias = self.types()  # [T, G], [T, H]
        return gate.view(self.num_edge_types, self.heads, -1).sum(-1), bias

    def forward(
        self, x: Tensor, edge_index: Tensor, edge_type: Tensor, temperature: float = 1.0,
        csr: Optional[CSRGraph] = None, return_attention: bool = True, x_dst: Optional[Tensor] = None,
    ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        n, H, dh = x.size(0), self.heads, self.head_dim
        if x_dst is not None and (csr is None or not supports(x)):
            raise ValueError("x_dst needs a bipartite CSR graph and tensors of the fused kernels (supports)")
        src, dst = edge_index[0], edge_index[1]
        queries = x if x_dst is None else x_dst
        n_dst = queries.size(0)
        q = self.Q(queries).view(n_dst, H, dh) * (1.0 / math.sqrt(dh))
        k = self.K(x).view(n, H, dh)
        v = F.normalize(self.V(x).view(n, H, dh), p=2.0, dim=-1)  # [N, H, dh], unit rows
        type_scale, type_bias = self.type_scale_and_bias()  # [T, H], [T, H]
        if csr is not None and supports(x):  # the fused CPU kernels; alpha comes detached
            out, alpha = csr_score_attention(q, k, v, type_scale, type_bias, csr, temperature, self.clamp)
            out = self.value_scale * out.reshape(n_dst, self.dim)
            return (out, alpha) if return_attention else out
        src, dst, edge_type = src.long(), dst.long(), edge_type.long()  # a compact graph: int32, int8
        score = gather_dot(q, k, dst, src)  # [E, H]
        logits = score * type_rows(type_scale, edge_type) + type_rows(type_bias, edge_type)  # [E, H]
        logits = (logits / temperature).clamp(-self.clamp, self.clamp)
        alpha = edge_softmax(logits, dst, n)  # [E, H]
        out = self.value_scale * gather_scatter(alpha, v, src, dst, n).reshape(n, self.dim)  # [N, D]
        return (out, alpha) if return_attention else out

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, heads={self.heads}, num_edge_types={self.num_edge_types}, "
            f"clamp={self.clamp}"
        )


class _ExphormerAttentionBase(nn.Module):
    r"""Parameters shared by :class:`EdgeListAttention` and :class:`NeighbourAttention`.

    ``Q``, ``K``, ``V``: :class:`~torch.nn.Linear` maps :math:`D \to D`; ``types``: the per-type
    terms (:class:`~spexphormer.nn.type_terms.TypeTerms`), a per-type, per-channel gate
    :math:`E1_t \in \mathbb{R}^D` on the keys and a per-type, per-head logit bias
    :math:`E2_t \in \mathbb{R}^H`. In the ``"table"`` form they start at 1 and 0 (plain
    dot-product attention at initialisation); in the ``"embedding"`` form (the authors') they are
    linear maps of a learned type embedding, random at initialisation. The logits are not scaled
    by :math:`1/\sqrt{d_h}` (the method's wide layer and the authors' code do not scale);
    ``scale_logits=True`` scales them.
    """

    def __init__(
        self, dim: int, heads: int, num_edge_types: int = NUM_EDGE_TYPES, clamp: float = 8.0, bias: bool = False,
        scale_logits: bool = False, type_terms: str = "embedding", type_embedding: Optional[nn.Embedding] = None,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.heads = heads
        self.head_dim = _check_heads(dim, heads)
        self.num_edge_types = num_edge_types
        self.clamp = float(clamp)
        self.scale_logits = scale_logits
        self.logit_scale = 1.0 / math.sqrt(self.head_dim) if scale_logits else 1.0
        self.Q = nn.Linear(dim, dim, bias=bias)
        self.K = nn.Linear(dim, dim, bias=bias)
        self.V = nn.Linear(dim, dim, bias=bias)
        self.types = TypeTerms(dim, heads, num_edge_types, type_terms, type_embedding)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in (self.Q, self.K, self.V):
            lin.reset_parameters()
        self.types.reset_parameters()

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, heads={self.heads}, num_edge_types={self.num_edge_types}, "
            f"clamp={self.clamp}, scale_logits={self.scale_logits}"
        )


class EdgeListAttention(_ExphormerAttentionBase):
    r"""Exphormer multi-head attention on an edge list.

    For an edge :math:`j \to i` of type :math:`t` and head :math:`h`:

    .. math::
        z_{ij}^h = \mathrm{clamp}\Big(\langle q_i^h,\; k_j^h \odot E1_t^h \rangle
            + E2_t^h,\ -c_{\max},\ c_{\max}\Big), \qquad
        \alpha_{ij}^h = \operatorname{softmax}_{j \in \mathcal{N}^-(i)} z_{ij}^h, \qquad
        \mathrm{out}_i^h = \sum_j \alpha_{ij}^h\, v_j^h,

    with :math:`q = Q x`, :math:`k = K x`, :math:`v = V x` split into :math:`H` heads of width
    :math:`d_h = D / H`; the heads are concatenated. Values are not normalised. Repeated edges
    count once each in the softmax. With ``scale_logits`` the inner product is multiplied by
    :math:`1/\sqrt{d_h}`.

    Args:
        dim (int): node feature width :math:`D`.
        heads (int): number of heads :math:`H`.
        num_edge_types (int, optional): number of edge types. (default: ``NUM_EDGE_TYPES`` = 3)
        clamp (float, optional): logit clamp :math:`c_{\max}`. (default: ``8.0``)
        bias (bool, optional): whether Q/K/V have a bias. (default: ``False``)
        scale_logits (bool, optional): scale the inner products by :math:`1/\sqrt{d_h}`.
            (default: ``False``)
        type_terms (str, optional): parametrisation of :math:`E1, E2`, ``"embedding"`` (the
            authors') or ``"table"``. (default: ``"embedding"``)
        type_embedding (nn.Embedding, optional): the model's shared type embedding.
            (default: ``None``: a layer of its own)

    Shapes:
        - **x**: :math:`(N, D)`; **edge_index**: :math:`(2, E)`; **edge_type**: :math:`(E,)`
        - **output**: :math:`(N, D)`, or ``(out, alpha)`` with alpha :math:`(E, H)` if
          ``return_attention``.

    State dict (shared with :class:`NeighbourAttention`): ``Q.weight``, ``K.weight``,
    ``V.weight`` (and ``.bias`` if ``bias``), ``types.*``.
    """

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_type: Tensor,
        return_attention: bool = False,
    ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        n, H, dh = x.size(0), self.heads, self.head_dim
        src, dst, edge_type = edge_index[0].long(), edge_index[1].long(), edge_type.long()  # int64 for the scatters
        q = self.Q(x).view(n, H, dh) * self.logit_scale
        k = self.K(x).view(n, H, dh)
        v = self.V(x).view(n, H, dh)
        gate, type_bias = self.types()  # [T, D], [T, H]
        # <q_i, k_j * E1_t> = <q_i * E1_t, k_j>: gate the queries once per (type, node) instead
        # of the keys once per edge; row t * N + i of qe is q_i * E1_t.
        T = self.num_edge_types
        qe = (q.unsqueeze(0) * gate.view(T, 1, H, dh)).reshape(T * n, H, dh)
        score = gather_dot(qe, k, edge_type * n + dst, src)  # [E, H]
        logits = (score + F.embedding(edge_type, type_bias)).clamp(-self.clamp, self.clamp)  # [E, H]
        alpha = edge_softmax(logits, dst, n)  # [E, H]
        out = gather_scatter(alpha, v, src, dst, n).reshape(n, self.dim)  # [N, D]
        return (out, alpha) if return_attention else out


class NeighbourAttention(_ExphormerAttentionBase):
    r"""Exphormer multi-head attention on a fixed-degree neighbour table (stage 2).

    Every output node :math:`i < n_{out}` attends to exactly :math:`k` source rows
    ``index[i, :]`` of ``x_src`` (repeats allowed, each counted once), with edge types
    ``edge_type[i, :]``. The queries are ``x_src[:n_out]``: the batch builder guarantees that the
    destination rows are a prefix of the source rows. The math is that of
    :class:`EdgeListAttention`, computed as a dense gather :math:`(n_{out}, k, H, d_h)` with the
    logits taken head by head (``einsum('nthd,nkhd->nhtk')``, i.e. ``'nhd,nkhd->nhk'`` for the
    query gated by each of the :math:`T_e` edge types, then the slot's type picked) and a softmax
    over :math:`k`: no scatter, and no reshape of :math:`(n, k, H, d_h)` into
    :math:`(nH, k, d_h)` (which would pair logits with the wrong neighbour and head).

    Args:
        dim (int): node feature width :math:`D`.
        heads (int): number of heads :math:`H`.
        num_edge_types (int, optional): number of edge types. (default: ``NUM_EDGE_TYPES`` = 3)
        clamp (float, optional): logit clamp :math:`c_{\max}`. (default: ``8.0``)
        bias (bool, optional): whether Q/K/V have a bias. (default: ``False``)
        scale_logits (bool, optional): scale the inner products by :math:`1/\sqrt{d_h}`.
            (default: ``False``)

    Shapes:
        - **x_src**: :math:`(n_{in}, D)`; **index**: :math:`(n_{out}, k)` rows of ``x_src``,
          :math:`n_{out} \le n_{in}`; **edge_type**: :math:`(n_{out}, k)`; **mask** (optional,
          bool): :math:`(n_{out}, k)`, the slots that take part in the softmax (default: all)
        - **output**: :math:`(n_{out}, D)`, or ``(out, alpha)`` with alpha
          :math:`(n_{out}, k, H)` if ``return_attention``.

    ``head_pairing="reference"`` computes the logits as the authors' wide layer does instead: it
    views the gated keys :math:`(n, k, H, d_h)` as :math:`(nH, k, d_h)`, so the logit of head
    :math:`h`, slot :math:`m` takes the key of neighbour :math:`j`, head :math:`h'` with
    :math:`jH + h' = hk + m` (bias and value stay those of :math:`(h, m)`); for :math:`H = 1` the two
    agree. Kept only to measure that defect against the reference (docs/method.md §4).

    State dict: identical to :class:`EdgeListAttention`.
    """

    def __init__(self, dim: int, heads: int, num_edge_types: int = NUM_EDGE_TYPES, clamp: float = 8.0,
                 bias: bool = False, scale_logits: bool = False, type_terms: str = "embedding",
                 type_embedding: Optional[nn.Embedding] = None, head_pairing: str = "per-head") -> None:
        super().__init__(dim, heads, num_edge_types, clamp, bias, scale_logits, type_terms, type_embedding)
        if head_pairing not in HEAD_PAIRINGS:
            raise ValueError(f"head_pairing must be one of {HEAD_PAIRINGS}, got {head_pairing!r}")
        self.head_pairing = head_pairing

    def forward(
        self,
        x_src: Tensor,
        index: Tensor,
        edge_type: Tensor,
        return_attention: bool = False,
        mask: Optional[Tensor] = None,
    ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        n_out, k = index.shape
        if n_out > x_src.size(0):
            raise ValueError(f"index has {n_out} rows but x_src only {x_src.size(0)}")
        n_in, H, dh, T = x_src.size(0), self.heads, self.head_dim, self.num_edge_types
        gate, type_bias = self.types()  # [T, D], [T, H]
        if self.head_pairing == "reference" and H > 1:
            return self._reference_pairing(x_src, index, edge_type, gate, type_bias, return_attention, mask)
        q = self.Q(x_src[:n_out]).view(n_out, 1, H, dh) * self.logit_scale
        # <q_i, k_j * E1_t> = <q_i * E1_t, k_j>: gate each query with all T types (n*T*D
        # floats) rather than every gathered key (n*k*D floats), then pick type t per slot.
        qe = q * gate.view(1, T, H, dh)  # [n, T, H, dh]
        keys = self.K(x_src).view(n_in, H, dh)
        vals = self.V(x_src).view(n_in, H, dh)
        bias = F.embedding(edge_type, type_bias).transpose(1, 2)  # E2: [n, k, H] -> [n, H, k]
        # One autograd function: the (n, k, H, dh) gathers are re-done in the backward pass
        # instead of being kept (they are most of a stage-2 step's memory otherwise).
        out, alpha = neighbour_attention(qe, keys, vals, bias, index, edge_type, self.clamp, mask)
        out = out.reshape(n_out, self.dim)  # [n, D]
        if return_attention:
            return out, alpha.transpose(1, 2)  # [n, k, H]
        return out


    def _reference_pairing(self, x_src, index, edge_type, gate, type_bias, return_attention, mask):
        """The authors' logits (see :class:`NeighbourAttention`), with plain autograd."""
        n_out, k = index.shape
        n_in, H, dh = x_src.size(0), self.heads, self.head_dim
        q = self.Q(x_src[:n_out]).reshape(n_out * H, dh, 1) * self.logit_scale
        keys = self.K(x_src).view(n_in, H, dh)[index] * gate[edge_type].view(n_out, k, H, dh)  # [n, k, H, dh]
        logits = torch.bmm(keys.reshape(n_out * H, k, dh), q).view(n_out, H, k)  # their (n*H, k, d) view
        logits = (logits + type_bias[edge_type].transpose(1, 2)).clamp(-self.clamp, self.clamp)  # [n, H, k]
        if mask is not None:
            logits = logits.masked_fill(~mask.unsqueeze(1), float("-inf"))
        alpha = torch.softmax(logits, dim=-1)  # [n, H, k]
        vals = self.V(x_src).view(n_in, H, dh)[index]  # [n, k, H, dh]
        out = torch.einsum("nhk,nkhd->nhd", alpha, vals).reshape(n_out, self.dim)
        return (out, alpha.transpose(1, 2)) if return_attention else out


def neighbour_table_to_edge_list(
    index: Tensor, edge_type: Optional[Tensor] = None
) -> Tuple[Tensor, Optional[Tensor]]:
    r"""Flatten a neighbour table into an edge list.

    Row ``i`` of the table becomes destination ``i``; the edges are in row-major order, so the
    ``alpha`` of :class:`EdgeListAttention` viewed as ``(n_out, k, H)`` lines up with the table.

    Args:
        index (LongTensor): source row of every slot.
        edge_type (LongTensor, optional): edge type of every slot.

    Shapes:
        - **index**, **edge_type**: :math:`(n_{out}, k)`
        - **output**: ``edge_index`` :math:`(2, n_{out} k)`, ``edge_type`` :math:`(n_{out} k,)`
    """
    n_out, k = index.shape
    dst = torch.arange(n_out, device=index.device).repeat_interleave(k)
    edge_index = torch.stack([index.reshape(-1), dst])
    return edge_index, (None if edge_type is None else edge_type.reshape(-1))
