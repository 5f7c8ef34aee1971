"""How the sparse kernels cut their transient gathers: one rule, two budgets.

A kernel that gathers a ``(rows, row_floats)`` tensor works through ``rows`` in chunks of at most
``budget`` floats, so its transient memory is bounded whatever the graph's size.
"""

from __future__ import annotations

from typing import Iterator, Tuple

import torch

#: Edge-list kernels (:mod:`spexphormer.nn.sparse`), CPU: floats of one transient
#: ``(chunk, H, d_h)`` tensor (16 MiB in float32). Smaller chunks stay in cache (1 thread, 1.4M
#: edges, d = 32, forward+backward: 2^20 -> 0.73 s, 2^22 -> 0.9-1.05 s, plain autograd gathers ->
#: 2.0 s), but every chunk costs a few OpenMP parallel regions, which are slow on an
#: oversubscribed machine; 2^22 keeps ~10 chunks per 1M edges at d = 32.
EDGE_CHUNK_FLOATS = 1 << 22
#: The same on GPUs: large, to keep the kernel count low (64 MiB in float32).
CUDA_EDGE_CHUNK_FLOATS = 1 << 24
#: Neighbour-table kernel (:mod:`spexphormer.nn.neighbour_kernel`): floats of one transient
#: ``(rows, k, H, d_h)`` gather (4 MiB in float32); its rows are small batches, so a small chunk.
NEIGHBOUR_CHUNK_FLOATS = 1 << 20


def chunk_ranges(n: int, row_floats: int, budget: int) -> Iterator[Tuple[int, int]]:
    """``[start, stop)`` ranges covering ``0..n`` with at most ``budget // row_floats`` rows each."""
    step = max(1, budget // max(1, row_floats))
    for start in range(0, n, step):
        yield start, min(start + step, n)


def edge_chunks(num_edges: int, row_floats: int, device: torch.device) -> Iterator[Tuple[int, int]]:
    """:func:`chunk_ranges` with the edge-list budget of ``device``."""
    budget = EDGE_CHUNK_FLOATS if device.type == "cpu" else CUDA_EDGE_CHUNK_FLOATS
    return chunk_ranges(num_edges, row_floats, budget)


def neighbour_chunks(rows: int, row_floats: int) -> Iterator[Tuple[int, int]]:
    """:func:`chunk_ranges` with the neighbour-table budget."""
    return chunk_ranges(rows, row_floats, NEIGHBOUR_CHUNK_FLOATS)
