r"""Inputs beyond a node's own features: its degree and its neighbourhood's features, propagated
once over the *whole* graph before training.

The wide model sees a node's neighbourhood only through the few edges sampled per layer, so what
the full neighbourhood says is lost when a node has many more neighbours than slots: its degree,
and the mean of all its neighbours' features. Both are cheap to compute once, exactly, with one
sparse product per hop (as SIGN, Frasca et al. 2020, does for scalable GNNs), and then cost a
step no more memory than wider input features: a batch reads their rows like ``x``'s.

.. math::
    \mathbf{X}^{(0)} = [\mathbf{X} \,\|\, \log(1 + \mathbf{d}_{\mathrm{in}})], \qquad
    \mathbf{X}^{(h)} = \mathbf{D}_{\mathrm{in}}^{-1/2}\,\mathbf{A}\,\mathbf{D}_{\mathrm{out}}^{-1/2}\,
    \mathbf{X}^{(h-1)}, \qquad
    \mathbf{A}_{ij} = 1 \text{ for each edge } j \to i,

the GCN propagation without self-loops (on a symmetric graph :math:`D_{in} = D_{out}`); the
degree column is there only when asked for, and is propagated with the features (the mean degree
of a node's neighbours, of theirs, ...). Each added column is standardised over all nodes (mean 0,
standard deviation 1; no labels are read), so its scale does not depend on the graph's size or
degree.
"""

from __future__ import annotations

import torch
from torch import Tensor

from spexphormer.utils.sparse import csr_matrix

#: Feature columns propagated per sparse product: bounds the product's dense output on wide inputs.
_CHUNK_COLUMNS = 256


def _standardise(t: Tensor) -> Tensor:
    """Columns to mean 0 and standard deviation 1 (constant columns to 0)."""
    std, mean = torch.std_mean(t, dim=0, keepdim=True)
    return (t - mean) / std.clamp(min=1e-6)


def propagate(x: Tensor, edge_index: Tensor, hops: int) -> list[Tensor]:
    r"""``[X^(1), ..., X^(hops)]``, each ``[N, F]`` float32 (the module docstring's formula).

    Args:
        x (Tensor): Node features ``[N, F]``.
        edge_index (LongTensor or IntTensor): Edges ``[2, E]``, row 0 the sources.
        hops (int): How many propagation steps.
    """
    n = x.size(0)
    src, dst = edge_index[0].long(), edge_index[1].long()
    d_in = torch.bincount(dst, minlength=n).clamp(min=1).float()
    d_out = torch.bincount(src, minlength=n).clamp(min=1).float()
    weight = d_in[dst].rsqrt() * d_out[src].rsqrt()
    order = torch.argsort(dst * n + src)  # CSR rows: destinations
    adj = csr_matrix(dst[order], src[order], weight[order], (n, n))
    del order, weight, src, dst
    out, h = [], x.float()
    for _ in range(hops):
        h = torch.cat([torch.sparse.mm(adj, h[:, i:i + _CHUNK_COLUMNS]) for i in range(0, h.size(1), _CHUNK_COLUMNS)],
                      dim=1)
        out.append(h)
    return out


def input_width(num_features: int, degree: bool = False, hops: int = 0) -> int:
    """Width of :func:`input_features`' output for ``num_features`` input columns."""
    return (num_features + int(degree)) * (1 + hops)


def input_features(x: Tensor, edge_index: Tensor, degree: bool = False, hops: int = 0) -> Tensor:
    r"""``x``, its degree column, and ``hops`` propagated copies of both (the added columns standardised).

    Args:
        x (Tensor): Node features ``[N, F]``.
        edge_index (LongTensor or IntTensor): The graph's edges ``[2, E]`` (no expander edges).
        degree (bool): Add the column :math:`\log(1 + d_{in})`.
        hops (int): Add :math:`X^{(1)}, \dots, X^{(hops)}` (of the features and the degree column).

    Shapes:
        ``[N, F] -> [N, (F + degree) * (1 + hops)]`` as ``[x | degree | X^(1) | ... | X^(hops)]``;
        ``x`` itself when nothing is added.
    """
    if not degree and hops == 0:
        return x
    x = x.float()
    base = x
    if degree:
        d_in = torch.bincount(edge_index[1].long(), minlength=x.size(0)).float()
        base = torch.cat([x, _standardise(torch.log1p(d_in)[:, None])], dim=1)
    return torch.cat([base] + [_standardise(h) for h in propagate(base, edge_index, hops)], dim=1)
