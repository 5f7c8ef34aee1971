r"""Stage 2 sampling: per-layer edge samples from attention scores, and mini-batches.

Conventions: edge :math:`(u \to v)` is column ``(u, v)`` of ``edge_index`` and :math:`v` attends
to :math:`u`. The augmented graph's edges are kept sorted by destination with CSR offsets ``ptr``
(:func:`spexphormer.graph.group_by_destination`), so node :math:`v`'s in-edges are positions ``ptr[v]:ptr[v+1]`` of
``src``, ``edge_type`` and each layer's ``scores``.

Typical use::

    perm, ptr = group_by_destination(edge_index, num_nodes)
    src, etype = edge_index[0, perm], edge_type[perm]
    scores = gather_edges(scores, perm)                      # (L, E)
    layers = sample_layers(ptr, src, etype, scores, ks, "reservoir", seed, epoch=epoch)
    for batch in iterate_batches(train_nodes, batch_size, layers, shuffle=True, seed=epoch):
        ...
"""

import spexphormer.utils.numba_threads  # noqa: F401  (before any parallel kernel)
from spexphormer.sampling.batches import (Batch, BatchBuilder, batch_builder, build_batch, iterate_batches,
                                          receptive_field_warning)
from spexphormer.sampling.sampled_layers import SampledLayers, layer_seed, sample_layers
from spexphormer.sampling.rng import derive_seed
from spexphormer.sampling.samplers import METHODS, check_method, sample_neighbours
from spexphormer.sampling.scored import GRAPH_PRIORITY, LayerSampler, layer_scores

__all__ = [
    "GRAPH_PRIORITY",
    "LayerSampler",
    "layer_scores",
    "receptive_field_warning",
    "METHODS",
    "Batch",
    "BatchBuilder",
    "batch_builder",
    "SampledLayers",
    "build_batch",
    "check_method",
    "derive_seed",
    "iterate_batches",
    "layer_seed",
    "sample_layers",
    "sample_neighbours",
]
