r"""Mini-batches over the sampled layer graphs.

For core nodes :math:`C` and sampled layers :math:`\ell = 0..L-1`, walk the layers backwards:

.. math::
    S_L = C, \qquad
    S_\ell = S_{\ell+1} \,\Vert\, \mathrm{unique}\bigl(\mathrm{nb}_\ell[S_{\ell+1}]
    \setminus S_{\ell+1}\bigr),

where the unique new sources keep their order of first appearance (row-major over
:math:`\mathrm{nb}_\ell[S_{\ell+1}]`). Each :math:`S_{\ell+1}` is thus a prefix of :math:`S_\ell`,
and all sets are prefixes of :math:`S_0`. Layer :math:`\ell` reads :math:`h_\ell` with
:math:`|S_\ell|` rows, its queries are rows :math:`0..|S_{\ell+1}|-1`, and the keys of query row
:math:`i` are rows ``index[ℓ][i]``; it writes :math:`h_{\ell+1}` with :math:`|S_{\ell+1}|` rows.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from numba import njit
from torch import Tensor

from spexphormer.sampling.sampled_layers import SampledLayers

__all__ = ["Batch", "BatchBuilder", "batch_builder", "build_batch", "iterate_batches", "receptive_field_warning"]


@dataclass
class Batch:
    r"""One mini-batch: the node sets of every layer and the local attention indices.

    Attributes:
        nodes (Tensor): Global ids of :math:`S_0` (every :math:`S_\ell` is a prefix).
        sizes (list[int]): :math:`[|S_0|, |S_1|, \ldots, |S_L|]`.
        index (list[Tensor]): ``index[ℓ][i, j]`` is the row of :math:`h_\ell` (local to
            :math:`S_\ell`) that query :math:`i` attends to along its :math:`j`-th sampled edge.
        edge_type (list[Tensor]): Types of those edges.
        core (Tensor): The core (target) nodes, ``nodes[:B]``.

    Shapes:
        - **nodes:** :math:`(|S_0|,)`
        - **index[ℓ], edge_type[ℓ]:** :math:`(|S_{\ell+1}|, k_\ell)`
        - **core:** :math:`(B,)`
    """

    nodes: Tensor
    sizes: list[int]
    index: list[Tensor]
    edge_type: list[Tensor]
    core: Tensor

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "Batch":
        """Returns a copy with every tensor moved to ``device``."""
        move = lambda t: t.to(device, non_blocking=non_blocking)  # noqa: E731
        return Batch(
            nodes=move(self.nodes),
            sizes=list(self.sizes),
            index=[move(t) for t in self.index],
            edge_type=[move(t) for t in self.edge_type],
            core=move(self.core),
        )


@njit(cache=True)
def _claim(ids, g2l, nodes, size):
    """Appends ``ids`` to ``nodes``; returns the new size, or ``-1 - size`` at a repeat."""
    for i in range(ids.shape[0]):
        x = ids[i]
        if g2l[x] >= 0:
            return -1 - size
        g2l[x] = size
        nodes[size] = x
        size += 1
    return size


@njit(cache=True)
def _extend(flat, g2l, nodes, size, local):
    """Appends the unseen ids of ``flat`` in first-appearance order; writes their local rows."""
    for i in range(flat.shape[0]):
        x = flat[i]
        r = g2l[x]
        if r < 0:
            r = size
            g2l[x] = r
            nodes[size] = x
            size += 1
        local[i] = r
    return size


def _ids(table: np.ndarray) -> np.ndarray:
    """A neighbour table as the compiled loops read it: int32 or int64, C-contiguous."""
    dtype = table.dtype if table.dtype in (np.int32, np.int64) else np.int64
    return np.ascontiguousarray(table, dtype=dtype)


class BatchBuilder:
    r"""Builds :class:`Batch` objects with a reusable global→local map.

    Keeps an int64 map :math:`g \mapsto` local row (``-1`` when absent) and an id buffer, both of
    size :math:`N`; after each batch only the touched entries are reset, so one batch costs
    :math:`O(\sum_\ell |S_{\ell+1}| k_\ell)`, not :math:`O(N)`. Not thread-safe.

    Args:
        layers (SampledLayers): The sampled graphs to batch over.
    """

    def __init__(self, layers: SampledLayers) -> None:
        if layers.num_layers < 1:
            raise ValueError("layers must contain at least one layer")
        n = layers.num_nodes
        # not a reference to ``layers``: the sample keeps its builder, and a cycle between the two
        # would hold every epoch's tables until Python's cyclic collector ran (measured: +14 MB
        # per epoch over a 20-layer Minesweeper run)
        self.num_layers = layers.num_layers
        self._nb = [_ids(nb.detach().cpu().numpy()) for nb in layers.neighbours]  # int32 tables: no copy
        for layer, nb in enumerate(self._nb):  # the compiled loops do not bounds-check
            if nb.ndim != 2 or nb.shape[0] != n or (nb.size and (nb.min() < 0 or nb.max() >= n)):
                raise ValueError(f"layers.neighbours[{layer}] must be ({n}, k) ids in [0, {n})")
        self._types = [t.detach().cpu() for t in layers.edge_types]
        self._g2l = np.full(n, -1, dtype=np.int64)
        self._nodes = np.empty(n, dtype=np.int64)

    def __call__(self, core: Tensor) -> Batch:
        core_np = np.ascontiguousarray(torch.as_tensor(core).cpu().numpy(), dtype=np.int64)
        n = self._g2l.shape[0]
        if core_np.ndim != 1 or core_np.size == 0:
            raise ValueError("core must be a non-empty 1-D tensor of node ids")
        if core_np.min() < 0 or core_np.max() >= n:
            raise ValueError(f"core node ids must lie in [0, {n})")
        self._size = 0
        try:
            return self._build(core_np)
        finally:
            self._g2l[self._nodes[: self._size]] = -1

    def _build(self, core_np: np.ndarray) -> Batch:
        size = _claim(core_np, self._g2l, self._nodes, 0)
        if size < 0:
            self._size = -1 - size  # the ids claimed before the repeat, reset by the caller
            raise ValueError("core node ids must be unique")
        self._size = size
        sizes, index, types = [size], [], []
        for layer in reversed(range(self.num_layers)):
            rows = self._nodes[: sizes[0]].copy()
            nb = self._nb[layer][rows]
            local = np.empty(nb.size, dtype=np.int64)
            self._size = _extend(nb.reshape(-1), self._g2l, self._nodes, sizes[0], local)
            index.append(torch.from_numpy(local.reshape(nb.shape)))
            types.append(self._types[layer][torch.from_numpy(rows)].long())
            sizes.insert(0, self._size)
        nodes = torch.from_numpy(self._nodes[: self._size].copy())
        return Batch(
            nodes=nodes,
            sizes=sizes,
            index=index[::-1],
            edge_type=types[::-1],
            core=nodes[: sizes[-1]],
        )


def batch_slices(nodes, batch_size: int, shuffle: bool = True, seed: int = 0) -> Iterator[Tensor]:
    """The core nodes of each batch: ``nodes`` (shuffled with ``seed`` if asked) cut into slices
    of ``batch_size``. Shared by :func:`iterate_batches` and the PyG-format batches."""
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    nodes = torch.as_tensor(nodes, dtype=torch.int64).reshape(-1)
    if shuffle:
        gen = torch.Generator().manual_seed(int(seed) % (2**63))
        nodes = nodes[torch.randperm(nodes.numel(), generator=gen)]
    for start in range(0, nodes.numel(), int(batch_size)):
        yield nodes[start : start + int(batch_size)]


def batch_builder(layers: SampledLayers) -> BatchBuilder:
    """The :class:`BatchBuilder` of ``layers``, made once and kept with the sample.

    Its two size-:math:`N` maps are then allocated once per sample, not once per pass over the
    nodes.
    """
    if layers._builder is None:
        layers._builder = BatchBuilder(layers)
    return layers._builder


def build_batch(core: Tensor, layers: SampledLayers) -> Batch:
    r"""Builds the mini-batch of the given core nodes (see the module docstring).

    Args:
        core (LongTensor): Unique global ids of the :math:`B` core nodes.
        layers (SampledLayers): The sampled graphs.

    Returns:
        Batch: With ``nodes[index[ℓ]] == layers.neighbours[ℓ][nodes[:sizes[ℓ+1]]]`` for all
        :math:`\ell`.

    Raises:
        ValueError: Empty, out-of-range or repeated core ids.

    Shapes:
        - **input:** core :math:`(B,)`

    Note:
        Each call allocates an :math:`O(N)` map; to build many batches, reuse one
        :class:`BatchBuilder` (as :func:`iterate_batches` does).
    """
    return BatchBuilder(layers)(core)


def iterate_batches(
    nodes: Tensor,
    batch_size: int,
    layers: SampledLayers,
    shuffle: bool = True,
    seed: int = 0,
) -> Iterator[Batch]:
    r"""Cuts ``nodes`` (optionally shuffled) into batches of core nodes and builds each.

    Every node of ``nodes`` is the core of exactly one batch; all batches have ``batch_size``
    core nodes except possibly the last. The shuffle is a ``torch.randperm`` with a generator
    seeded by ``seed``.

    Args:
        nodes (LongTensor): Unique global ids of the target nodes (e.g. the training nodes).
        batch_size (int): Core nodes per batch, :math:`B \ge 1`.
        layers (SampledLayers): The sampled graphs.
        shuffle (bool, optional): Shuffle ``nodes`` first. (default: ``True``)
        seed (int, optional): Seed of the shuffle. (default: ``0``)

    Yields:
        Batch: One per slice of :math:`B` nodes.

    Shapes:
        - **input:** nodes :math:`(M,)`
    """
    builder = batch_builder(layers)
    for core in batch_slices(nodes, batch_size, shuffle, seed):
        yield builder(core)


#: Warn when a batch's receptive field bound reaches this fraction of the graph.
RECEPTIVE_FIELD_WARN_FRACTION = 0.5
#: ... on graphs of at least this many nodes: below it a step over the whole graph is small, and
#: batches smaller than the graph are a choice for optimisation (more steps), not for memory.
RECEPTIVE_FIELD_WARN_MIN_NODES = 50_000


def receptive_field_warning(batch_size: int, ks, num_nodes: int) -> str | None:
    r"""The start-up warning when a batch's sampled receptive field approaches the graph.

    A batch of :math:`B` target nodes reads at most :math:`B \prod_\ell (k_\ell + 1)` input rows
    (each layer adds :math:`k_\ell` sampled neighbours per node). Once that bound nears
    :math:`N`, a batch touches most of the graph and its memory stops falling with :math:`B`.

    Returns:
        the message (also issued as a :class:`UserWarning`), or None when the bound is below
        ``RECEPTIVE_FIELD_WARN_FRACTION`` of the nodes, when a batch is the whole graph anyway
        (:math:`B \ge N`), or when the graph has fewer than ``RECEPTIVE_FIELD_WARN_MIN_NODES``
        nodes (the small presets' graphs).
    """
    bound = batch_size * math.prod(k + 1 for k in ks)
    if (batch_size >= num_nodes or num_nodes < RECEPTIVE_FIELD_WARN_MIN_NODES
            or bound < RECEPTIVE_FIELD_WARN_FRACTION * num_nodes):
        return None
    factors = "·".join([f"{batch_size:,}"] + [str(k + 1) for k in ks])
    msg = (f"stage 2: a batch's receptive field B·Π(k+1) = {factors} = {bound:,} rows is "
           f"{bound / max(num_nodes, 1):.2g}x the {num_nodes:,} nodes: batches cover most of the graph, "
           f"so memory no longer depends on stage2.batch_size; lower batch_size or ks, or use fewer layers")
    warnings.warn(msg, stacklevel=2)
    return msg
