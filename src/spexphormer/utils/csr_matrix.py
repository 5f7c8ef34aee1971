"""Sparse CSR matrices for sparse-dense products (``torch.sparse.mm``)."""

from __future__ import annotations

import warnings

import torch
from torch import Tensor


def csr_matrix(rows: Tensor, cols: Tensor, values: Tensor, shape: tuple[int, int],
               row_counts: Tensor | None = None) -> Tensor:
    """A CSR matrix of the entries ``(rows[i], cols[i], values[i])``; ``rows`` must be sorted.

    ``row_counts`` (``bincount(rows)``), when the caller has it already, saves counting again.
    Shapes: rows, cols, values ``[nnz]`` -> a sparse CSR tensor ``shape``.
    """
    if row_counts is None:
        row_counts = torch.bincount(rows, minlength=shape[0])
    crow = torch.zeros(shape[0] + 1, dtype=torch.long, device=rows.device)
    crow[1:] = row_counts.cumsum(0)
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the product used here is stable
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, cols, values, size=shape, check_invariants=False)
