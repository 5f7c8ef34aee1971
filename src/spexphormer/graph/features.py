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

from spexphormer.errors import DataError
from spexphormer.utils.csr_matrix import csr_matrix

#: Floats per column chunk (128 MiB): bounds the temporaries of the sparse products and of the
#: standardisation, whatever the graph's size and the features' width.
_CHUNK_FLOATS = 1 << 25


def _column_chunks(t: Tensor):
    """``t``'s columns in chunks of at most :data:`_CHUNK_FLOATS` floats (views)."""
    step = max(1, _CHUNK_FLOATS // max(1, t.size(0)))
    return [(i, t[:, i:i + step]) for i in range(0, t.size(1), step)]


def _standardise_(t: Tensor) -> Tensor:
    """Columns to mean 0 and standard deviation 1 (constant columns to 0), in place, a chunk of
    columns at a time (no full-size temporary)."""
    for _, cols in _column_chunks(t):
        std, mean = torch.std_mean(cols, dim=0, keepdim=True)
        cols.sub_(mean).div_(std.clamp(min=1e-6))
    return t


def _sorted_by_destination(src: Tensor, dst: Tensor) -> bool:
    """Whether the edges are sorted by ``(dst, src)``, the order of a CSR matrix's entries."""
    if dst.numel() < 2:
        return True
    step = dst[1:] - dst[:-1]
    return bool((step >= 0).all() and ((step > 0) | (src[1:] > src[:-1])).all())


def _check_edges(edge_index: Tensor, n: int) -> None:
    """A clear error for node ids outside ``0..n-1`` (the unchecked CSR product would read past
    its arrays)."""
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise DataError(f"edge_index must have shape [2, E], got {list(edge_index.shape)}")
    if edge_index.numel() and not (0 <= int(edge_index.min()) and int(edge_index.max()) < n):
        raise DataError(f"edge_index holds node ids outside 0..{n - 1} (the features have {n} rows)")


def _propagation(edge_index: Tensor, n: int) -> Tensor:
    r"""The sparse CSR matrix :math:`D_{in}^{-1/2} A D_{out}^{-1/2}` ``[n, n]`` (rows: destinations);
    ``edge_index`` already checked."""
    src, dst = edge_index[0].long(), edge_index[1].long()
    d_in = torch.bincount(dst, minlength=n).clamp(min=1).float()
    d_out = torch.bincount(src, minlength=n).clamp(min=1).float()
    weight = d_in[dst].rsqrt() * d_out[src].rsqrt()
    if not _sorted_by_destination(src, dst):  # the loaders' graphs are: no E-sized sort then
        order = torch.argsort(dst * n + src)
        src, dst, weight = src[order], dst[order], weight[order]
    return csr_matrix(dst, src, weight, (n, n))


def _propagate_into(adj: Tensor, h: Tensor, out: Tensor) -> None:
    """``out = adj @ h``, a chunk of columns at a time (bounds the product's temporaries)."""
    for i, cols in _column_chunks(h):
        out[:, i:i + cols.size(1)] = torch.sparse.mm(adj, cols.contiguous())


def propagate(x: Tensor, edge_index: Tensor, hops: int) -> list[Tensor]:
    r"""``[X^(1), ..., X^(hops)]``, each ``[N, F]`` float32 (the module docstring's formula).

    Args:
        x (Tensor): Node features ``[N, F]``.
        edge_index (LongTensor or IntTensor): Edges ``[2, E]``, row 0 the sources.
        hops (int): How many propagation steps.
    """
    _check_edges(edge_index, x.size(0))
    adj, out, h = _propagation(edge_index, x.size(0)), [], x.float()
    for _ in range(hops):
        nxt = h.new_empty(h.shape)
        _propagate_into(adj, h, nxt)
        out.append(h := nxt)
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
    n, f = x.shape
    _check_edges(edge_index, n)
    b = f + int(degree)  # the width of each block: [x | degree], then its hops
    out = torch.empty((n, b * (1 + hops)), dtype=torch.float32, device=x.device)  # filled in place
    out[:, :f] = x
    if degree:
        d_in = torch.bincount(edge_index[1].long(), minlength=n).float()
        out[:, f] = torch.log1p(d_in)
        _standardise_(out[:, f:b])
    if hops:
        adj = _propagation(edge_index, n)
        for k in range(1, hops + 1):  # raw hops first: each one is propagated from the last
            _propagate_into(adj, out[:, (k - 1) * b:k * b], out[:, k * b:(k + 1) * b])
        _standardise_(out[:, b:])
    return out
