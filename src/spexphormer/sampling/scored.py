r"""Stage 2's sampled graphs, drawn from the estimator's scores (docs/method.md §4).

Every ``resample_every`` epochs, node :math:`v` keeps :math:`k_\ell` of its incoming augmented
edges in wide layer :math:`\ell`, drawn with the scores of estimator layer
:math:`\min(\ell, L_{\mathrm{est}} - 1)` (layers beyond the estimator's depth reuse its last one).

Under ``torchrun`` every rank needs the same sample (a pure function of seed and epoch): with
``share`` (:class:`~spexphormer.distributed.machine_share.SharedSamples`, which stage 2 passes)
local rank 0 of each machine draws it and the local ranks memory-map its tables, instead of each
rank drawing all :math:`N` nodes' tables and holding its own copy.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import torch
from torch import Tensor
from torch_geometric.data import FeatureStore, GraphStore

from spexphormer.data.stores import EDGE, MappedFeatureStore, MappedGraphStore
from spexphormer.graph import GRAPH_EDGE
from spexphormer.sampling.batches import batch_builder
from spexphormer.sampling.sampled_layers import SampledLayers, sample_layers
from spexphormer.sampling.samplers import check_method
from spexphormer.sampling.typed import sample_typed_layers
from spexphormer.scores import Scores

__all__ = ["GRAPH_PRIORITY", "LayerSampler", "layer_scores", "scores_stores"]

#: Added to a graph edge's score when graph edges are kept: scores are at most 1, so a graph edge
#: loses its place to a non-graph edge with probability below 1e-6.
GRAPH_PRIORITY = 1e6


def layer_scores(scores: Scores, num_layers: int) -> Tensor:
    """The estimator layer that guides each wide layer: layer ``l`` uses ``min(l, L_est - 1)``.

    Shapes:
        return: [num_layers, E]
    """
    if num_layers == scores.num_layers:  # the scores themselves: no [L, E] copy (they may be mapped)
        return scores.scores
    pick = torch.clamp(torch.arange(num_layers), max=scores.num_layers - 1)
    return scores.scores[pick]


def scores_stores(scores: Scores, num_layers: int, keep_graph_edges: bool = False
                  ) -> tuple[MappedFeatureStore, MappedGraphStore]:
    """What the sampler reads, as PyG stores (:mod:`spexphormer.data.stores`): the augmented graph
    (CSC), its edge types and the ``[num_layers, E]`` scores (:func:`layer_scores`; the scores
    themselves, not a copy, unless graph edges get their priority added)."""
    g, layered = scores.graph, layer_scores(scores, num_layers)
    if keep_graph_edges:
        layered = layered + GRAPH_PRIORITY * (g.edge_type == GRAPH_EDGE).to(layered.dtype)
    features = MappedFeatureStore({("edge", "type"): g.edge_type, ("edge", "scores"): layered})
    return features, MappedGraphStore.csc(g.src, g.ptr, g.num_nodes)


class LayerSampler:
    r"""Draws the per-layer neighbour tables of one training run, one sample per resampling period.

    It reads the graph, the edge types and the scores through PyG's ``FeatureStore`` and
    ``GraphStore`` interfaces (:mod:`spexphormer.data.stores`): built over ``scores`` by default,
    or any other implementation passed as ``stores``.

    Args:
        scores (Scores): The estimator's scores and the augmented graph they belong to (None when
            ``stores`` are given).
        ks (Sequence[int]): Sampled in-degree :math:`k_\ell` of each wide layer.
        method (str, optional): ``"reservoir"`` (by score, without replacement), ``"uniform"`` or
            ``"topk"``. (default: ``"reservoir"``)
        keep_graph_edges (bool, optional): Draw a node's graph edges before all its other edges
            (uniformly among themselves when there are more than :math:`k`). (default: ``False``)
        seed (int, optional): Base seed; the sample of epoch :math:`t` is a pure function of
            ``(seed, t)``. (default: ``0``)
        resample_every (int, optional): Epochs that share one sample. (default: ``1``)
        graph_ks (Sequence[int], optional): Graph-edge slots per node for each layer, a per-type
            budget (:func:`~spexphormer.sampling.typed.sample_typed_layers`: a self-loop, then graph
            and expander slots); with ``expander_ks``, it replaces ``ks``. (default: ``None``)
        expander_ks (Sequence[int], optional): Expander-edge slots per node for each layer, the
            other per-type budget. (default: ``None``)
        stores (tuple, optional): ``(FeatureStore, GraphStore)`` holding what
            :func:`scores_stores` holds (``keep_graph_edges`` is then already applied).
        share (callable, optional): Called with a function that draws the sample, returns the
            sample to use (e.g. drawn once per machine and mapped); every rank then calls
            :meth:`sample` together, in the same order. (default: ``None``, drawn here)
    """

    def __init__(self, scores: Scores | None, ks: Sequence[int], method: str = "reservoir",
                 keep_graph_edges: bool = False, seed: int = 0, resample_every: int = 1,
                 graph_ks: Sequence[int] | None = None, expander_ks: Sequence[int] | None = None,
                 stores: tuple[FeatureStore, GraphStore] | None = None,
                 share: Callable[[Callable[[], SampledLayers]], SampledLayers] | None = None) -> None:
        check_method(method)
        if resample_every < 1:
            raise ValueError(f"resample_every must be >= 1, got {resample_every}")
        self.ks, self.method, self.seed = list(ks), method, seed
        self.resample_every = resample_every
        self.typed = (list(graph_ks), list(expander_ks)) if graph_ks is not None else None
        if stores is None:
            stores = scores_stores(scores, len(graph_ks) if self.typed else len(self.ks), keep_graph_edges)
        self.features, self.graph_store = stores
        self.seconds = 0.0  # time spent sampling, over all calls
        self._drawn_at: int | None = None
        self._layers: SampledLayers | None = None
        self.share = share

    def sample(self, epoch: int) -> SampledLayers:
        """A fresh sample for ``epoch`` (the same for the same seed and epoch), through ``share``
        when given."""
        tic = time.perf_counter()
        draw = lambda: self._draw(epoch)  # noqa: E731
        layers = self.share(draw) if self.share is not None else draw()
        batch_builder(layers)  # its O(N) maps belong to the sample, not to a training step
        self.seconds += time.perf_counter() - tic
        return layers

    def _draw(self, epoch: int) -> SampledLayers:
        """The sample of ``epoch``, drawn in this process."""
        src, ptr = self.graph_store.get_edge_index(EDGE, "csc")
        edge_type = self.features.get_tensor("edge", "type", None)
        scores = self.features.get_tensor("edge", "scores", None)
        if self.typed:
            layers = sample_typed_layers(ptr, src, edge_type, scores, *self.typed, self.method,
                                         seed=self.seed, epoch=epoch)
        else:
            layers = sample_layers(ptr, src, edge_type, scores, self.ks, self.method, seed=self.seed, epoch=epoch)
        return layers

    def layers_for(self, epoch: int) -> SampledLayers:
        """The sample of ``epoch``'s resampling period, drawn once and kept until the period ends.

        The period's first epoch seeds it, so a resumed run draws the graphs it had."""
        at = epoch - epoch % self.resample_every
        if self._drawn_at != at:
            self._layers, self._drawn_at = self.sample(at), at
        return self._layers

    @property
    def current(self) -> SampledLayers:
        """The last sample :meth:`layers_for` drew."""
        if self._layers is None:
            raise RuntimeError("no sample drawn yet: call layers_for(epoch) first")
        return self._layers
