r"""Per-node distances between two attention-score vectors on the same augmented graph.

Both score vectors live on the CSR layout of :class:`~spexphormer.graph.AugmentedGraph`: edges are
sorted by destination, the in-edges of node :math:`v` are positions ``ptr[v]:ptr[v+1]``, and a
score vector :math:`p \in \mathbb{R}^E` restricted to those positions is a probability
distribution :math:`p_v` over :math:`v`'s incoming edges. Every measure here is computed for all
nodes at once (segment sums and one stable sort, no Python loop over nodes or edges).

Support points are *edge positions*, not source nodes: two edges :math:`u \to v` of different
types (e.g. a graph edge and an expander edge between the same pair) are two distinct points,
exactly as stage 2 samples them.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["energy_distance", "topk_agreement", "uniform_scores", "random_logit_scores"]


def _segments(ptr: Tensor) -> tuple[Tensor, Tensor]:
    """In-degrees ``[N]`` and the destination node of every edge position ``[E]``."""
    ptr = ptr.long()
    deg = ptr[1:] - ptr[:-1]
    node = torch.repeat_interleave(torch.arange(deg.numel(), device=ptr.device), deg)
    return deg, node


def _check(ptr: Tensor, p: Tensor | None = None, q: Tensor | None = None) -> None:
    if ptr.dim() != 1 or ptr.numel() < 1:
        raise ValueError(f"ptr must be a 1-D tensor of N + 1 offsets, got shape {tuple(ptr.shape)}")
    e = int(ptr[-1])
    for name, t in (("p", p), ("q", q)):
        if t is not None and (t.dim() != 1 or t.numel() != e):
            raise ValueError(f"{name} must have shape [{e}] (ptr[-1] edges), got {tuple(t.shape)}")


def energy_distance(p: Tensor, q: Tensor, ptr: Tensor) -> Tensor:
    r"""Energy distance between two distributions over each node's incoming edges.

    For node :math:`v` with in-edges :math:`e_1, \dots, e_m` let :math:`X, X' \sim p_v` and
    :math:`Y, Y' \sim q_v` be independent, and use the discrete metric
    :math:`d(a, b) = \mathbb{1}[a \neq b]` on the edges. The energy distance is

    .. math::
        D(p_v, q_v) = 2\,\mathbb{E}\,d(X, Y) - \mathbb{E}\,d(X, X') - \mathbb{E}\,d(Y, Y').

    Since :math:`\mathbb{E}\,d(X, Y) = 1 - \sum_i p_i q_i`,
    :math:`\mathbb{E}\,d(X, X') = 1 - \sum_i p_i^2` and
    :math:`\mathbb{E}\,d(Y, Y') = 1 - \sum_i q_i^2`,

    .. math::
        D = 2 - 2\sum_i p_i q_i - 1 + \sum_i p_i^2 - 1 + \sum_i q_i^2
          = \sum_i (p_i - q_i)^2 = \lVert p_v - q_v \rVert_2^2 ,

    which lies in :math:`[0, 2]`: 0 iff the distributions agree, 2 iff both are point masses on
    different edges. Duplicate :math:`u \to v` edges of different types are distinct support
    points. A node without in-edges gets 0.

    Args:
        p (Tensor): scores :math:`[E]`, summing to 1 over each node's in-edges.
        q (Tensor): scores :math:`[E]` on the same edges.
        ptr (Tensor): CSR offsets :math:`[N + 1]` over destinations.

    Returns:
        Tensor: :math:`[N]` per-node energy distance (float64 accumulation, returned as float32).
    """
    _check(ptr, p, q)
    deg, node = _segments(ptr)
    sq = (p.double() - q.double()).pow(2)
    out = torch.zeros(deg.numel(), dtype=torch.float64, device=p.device).index_add_(0, node, sq)
    return out.float()


def _ranks(scores: Tensor, ptr: Tensor, node: Tensor) -> Tensor:
    """Rank of each edge within its node, by descending score; ties by edge position (stable)."""
    by_score = torch.sort(scores, descending=True, stable=True).indices
    order = by_score[torch.sort(node[by_score], stable=True).indices]  # grouped by node, then score
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel(), device=order.device) - ptr.long()[node[order]]
    return rank


def topk_agreement(p: Tensor, q: Tensor, ptr: Tensor, k: int) -> Tensor:
    r"""Share of the top-:math:`k` in-edges that two score vectors agree on, per node.

    .. math::
        A_v = \frac{\lvert \operatorname{top}_k(p_v) \cap \operatorname{top}_k(q_v) \rvert}
                   {\min(k, \deg^-(v))},

    where :math:`\operatorname{top}_k` takes the :math:`\min(k, \deg^-(v))` edges of largest score
    (ties broken by edge position, lower first, so the result is deterministic). :math:`A_v = 1`
    when the two networks would keep the same edges under top-:math:`k` selection; a node whose
    in-degree is at most :math:`k` always scores 1. Computed with one stable lexicographic sort by
    (node, -score, position) per vector. Nodes without in-edges get NaN.

    Args:
        p (Tensor): scores :math:`[E]`.
        q (Tensor): scores :math:`[E]` on the same edges.
        ptr (Tensor): CSR offsets :math:`[N + 1]`.
        k (int): edges kept per node (stage 2's :math:`k_\ell`).

    Returns:
        Tensor: :math:`[N]` agreement in :math:`[0, 1]` (NaN where the in-degree is 0).
    """
    _check(ptr, p, q)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    deg, node = _segments(ptr)
    both = (_ranks(p, ptr, node) < k) & (_ranks(q, ptr, node) < k)
    hits = torch.zeros(deg.numel(), dtype=torch.float64, device=p.device).index_add_(0, node, both.double())
    denom = deg.clamp(max=k).double()
    return torch.where(deg > 0, hits / denom.clamp(min=1), torch.full_like(hits, float("nan"))).float()


def uniform_scores(ptr: Tensor) -> Tensor:
    r"""The no-information baseline :math:`p_{uv} = 1 / \deg^-(v)` on every edge, :math:`[E]`."""
    _check(ptr)
    deg, node = _segments(ptr)
    return (1.0 / deg.float())[node]


def random_logit_scores(ptr: Tensor, seed: int = 0) -> Tensor:
    r"""A random-attention baseline: :math:`p_v = \operatorname{softmax}(z_v)`, :math:`z \sim \mathcal{N}(0, I)`.

    Mimics an untrained network with unit-variance logits; seeded, so it is reproducible.

    Args:
        ptr (Tensor): CSR offsets :math:`[N + 1]`.
        seed (int, optional): seed of the logits. (default: ``0``)

    Returns:
        Tensor: :math:`[E]` scores summing to 1 over each node's in-edges.
    """
    _check(ptr)
    deg, node = _segments(ptr)
    n = deg.numel()
    z = torch.randn(int(ptr[-1]), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    z = z.to(ptr.device)
    top = torch.full((n,), -torch.inf, dtype=z.dtype, device=z.device).scatter_reduce_(0, node, z, "amax")
    w = (z - top[node]).exp()
    total = torch.zeros(n, dtype=z.dtype, device=z.device).index_add_(0, node, w)
    return (w / total[node]).float()
