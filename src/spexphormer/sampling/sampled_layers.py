r"""Per-layer sampled graphs: :math:`k_\ell` source nodes for every node and layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from torch import Tensor

from spexphormer.sampling.rng import derive_seed
from spexphormer.sampling.samplers import check_method, sample_neighbours

__all__ = ["SampledLayers", "sample_layers", "layer_seed"]


@dataclass
class SampledLayers:
    r"""The sampled, regular-degree attention graphs of all layers.

    Layer :math:`\ell = 0` is the first layer the input passes through. In layer :math:`\ell`,
    node :math:`v` attends to the :math:`k_\ell` source nodes ``neighbours[ℓ][v]`` (repeats are
    possible when :math:`k_\ell` exceeds :math:`v`'s in-degree), along edges of types
    ``edge_types[ℓ][v]`` (0 graph, 1 expander, 2 self-loop).

    Shapes:
        - **neighbours[ℓ]:** :math:`(N, k_\ell)` global node ids, in the dtype of the graph's
          sources (int32 for a compact :class:`~spexphormer.graph.AugmentedGraph`)
        - **edge_types[ℓ]:** :math:`(N, k_\ell)`, in the dtype of its edge types (int8)
    """

    neighbours: list[Tensor]
    edge_types: list[Tensor]
    # the sample's BatchBuilder, made once by sampling.batches.batch_builder (its size-N maps
    # belong to the sample, not to every pass over the nodes)
    _builder: object = field(default=None, repr=False, compare=False)

    @property
    def num_layers(self) -> int:
        """Number of layers :math:`L`."""
        return len(self.neighbours)

    @property
    def num_nodes(self) -> int:
        """Number of nodes :math:`N` (rows of every layer)."""
        return int(self.neighbours[0].size(0)) if self.neighbours else 0

    @property
    def ks(self) -> list[int]:
        """Sampled in-degree :math:`k_\\ell` of each layer."""
        return [int(nb.size(1)) for nb in self.neighbours]


def layer_seed(seed: int, layer: int, epoch: int = 0) -> int:
    """The seed :func:`sample_layers` passes to :func:`sample_neighbours` for one layer."""
    return derive_seed(seed, epoch, layer)


def _check_inputs(ptr: Tensor, src: Tensor, edge_type: Tensor, scores: Tensor, ks) -> None:
    if scores.dim() != 2:
        raise ValueError(f"scores must have shape (L, E), got {tuple(scores.shape)}")
    num_layers, num_edges = scores.shape
    if len(ks) != num_layers:
        raise ValueError(f"ks has {len(ks)} entries but scores has {num_layers} layers")
    if src.numel() != num_edges or edge_type.numel() != num_edges:
        raise ValueError(
            f"src ({src.numel()}) and edge_type ({edge_type.numel()}) must have "
            f"E = {num_edges} entries like scores"
        )
    if ptr.dim() != 1 or ptr.numel() < 1:
        raise ValueError("ptr must be 1-D CSR offsets of length N + 1")


def sample_layers(
    ptr: Tensor,
    src: Tensor,
    edge_type: Tensor,
    scores: Tensor,
    ks: Sequence[int],
    method: str = "reservoir",
    seed: int = 0,
    *,
    epoch: int = 0,
) -> SampledLayers:
    r"""Samples every layer's regular-degree graph from the attention scores.

    Layer :math:`\ell` uses :func:`sample_neighbours` on ``scores[ℓ]`` with its own seed
    :math:`\mathrm{derive}(\mathrm{seed}, \mathrm{epoch}, \ell)` (:func:`layer_seed`), then maps
    the sampled edge positions :math:`e` to source nodes and types:

    .. math::
        \mathrm{neighbours}_\ell[v, j] = \mathrm{src}[e_{v,j}], \qquad
        \mathrm{edge\_types}_\ell[v, j] = \mathrm{edge\_type}[e_{v,j}].

    Args:
        ptr (Tensor): CSR offsets of the destination-sorted edges.
        src (Tensor): Source node of each sorted edge.
        edge_type (Tensor): Type of each sorted edge (0 graph, 1 expander, 2 self-loop).
        scores (Tensor): Per-layer scores in sorted edge order (float32).
        ks (Sequence[int]): Edges per node for each layer, :math:`k_\ell \ge 1`.
        method (str): ``"reservoir"``, ``"uniform"`` or ``"topk"``.
        seed (int): Base seed.
        epoch (int, optional): Mixed into every layer's seed, so that re-sampling each epoch
            with the same base seed gives fresh, reproducible graphs. (default: ``0``)

    Returns:
        SampledLayers: One :math:`(N, k_\ell)` pair of tensors per layer.

    Raises:
        ConfigError: Unknown ``method``.
        ValueError: Mismatched shapes, ``k < 1``, in-degree 0, or invalid scores.

    Shapes:
        - **input:** ptr :math:`(N + 1,)`, src :math:`(E,)`, edge_type :math:`(E,)`,
          scores :math:`(L, E)`
        - **output:** neighbours[ℓ], edge_types[ℓ] :math:`(N, k_\ell)`
    """
    check_method(method)
    _check_inputs(ptr, src, edge_type, scores, ks)
    # The tables keep the graph's compact dtypes (int32 ids, int8 types: N x k x 5 bytes per
    # layer); batches widen their own small slices.
    neighbours, types = [], []
    for layer, k in enumerate(ks):
        pos = sample_neighbours(ptr, scores[layer], k, method, layer_seed(seed, layer, epoch))
        neighbours.append(src[pos])
        types.append(edge_type[pos])
    return SampledLayers(neighbours=neighbours, edge_types=types)
