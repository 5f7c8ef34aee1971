"""Stage 2: sample sparse regular-degree graphs from the scores and train the wide network.

Every ``resample_every`` epochs, each node keeps ``k_l`` of its incoming augmented edges in layer
``l``, drawn with the scores of the estimator's layer ``l`` (layers beyond the estimator's depth
reuse its last layer). Training walks mini-batches of target nodes; evaluation uses the same kind
of sampled graph (docs/method.md §4).
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch_geometric.data import Data

from spexphormer.config import Config
from spexphormer.distributed import data_parallel as dp
from spexphormer.graph import GRAPH_EDGE
from spexphormer.nn import Spexphormer
from spexphormer.sampling import SampledLayers, batch_builder, derive_seed, iterate_batches, sample_layers
from spexphormer.scores import Scores
from spexphormer.train import FitResult, compute_metric, fit, output_dim, task_loss
from spexphormer.train.metrics import labelled
from spexphormer.train.state import TrainingState
from spexphormer.utils.seed import seeded


GRAPH_PRIORITY = 1e6  # scores are at most 1: a graph edge loses its place with probability < 1e-6


@dataclass
class Stage2Result:
    fit: FitResult
    model: Spexphormer
    model_args: dict
    edge_ratio: float
    sampling_seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def wide_args(data: Data, cfg: Config) -> dict:
    s2 = cfg.stage2
    return dict(in_dim=data.num_features, out_dim=output_dim(data.task, data.num_classes), hidden=s2.hidden,
                heads=s2.heads, num_layers=s2.num_layers, dropout=s2.dropout, norm=s2.norm,
                pre_layers=s2.pre_layers, scale_logits=s2.scale_logits)


def layer_scores(scores: Scores, num_layers: int) -> Tensor:
    """The estimator layer that guides each wide layer: layer ``l`` uses ``min(l, L_est - 1)``.

    Shapes:
        return: [num_layers, E]
    """
    pick = torch.clamp(torch.arange(num_layers), max=scores.num_layers - 1)
    return scores.scores[pick]


class LayerSampler:
    """Draws the per-layer neighbour tables for one training run (seeded per epoch)."""

    def __init__(self, scores: Scores, cfg: Config, seed: int):
        s2 = cfg.stage2
        self.graph, self.ks, self.method, self.seed = scores.graph, list(s2.ks), s2.sampler, seed
        self.scores = layer_scores(scores, s2.num_layers)
        if s2.keep_graph_edges:
            # A weight far above any score: a node's graph edges are drawn before all its other
            # edges (uniformly among themselves when there are more than k), the rest by score.
            graph_edge = (scores.graph.edge_type == GRAPH_EDGE).to(self.scores.dtype)
            self.scores = self.scores + GRAPH_PRIORITY * graph_edge
        self.seconds = 0.0

    def sample(self, epoch: int) -> SampledLayers:
        tic = time.perf_counter()
        g = self.graph
        layers = sample_layers(g.ptr, g.src, g.edge_type, self.scores, self.ks, self.method,
                               seed=self.seed, epoch=epoch)
        batch_builder(layers)  # its O(N) maps belong to the sample, not to a training step
        self.seconds += time.perf_counter() - tic
        return layers


#: Warn when a batch's receptive field bound reaches this fraction of the graph.
RECEPTIVE_FIELD_WARN_FRACTION = 0.5


def receptive_field_warning(batch_size: int, ks, num_nodes: int) -> str | None:
    r"""The start-up warning when a batch's sampled receptive field approaches the graph.

    A batch of :math:`B` target nodes reads at most :math:`B \prod_\ell (k_\ell + 1)` input rows
    (each layer adds :math:`k_\ell` sampled neighbours per node). Once that bound nears
    :math:`N`, a batch touches most of the graph and its memory stops falling with :math:`B`.

    Returns:
        the message (also issued as a :class:`UserWarning`), or None when the bound is below
        ``RECEPTIVE_FIELD_WARN_FRACTION`` of the nodes, or when a batch is the whole graph anyway
        (:math:`B \ge N`, the setting of the small presets).
    """
    bound = batch_size * math.prod(k + 1 for k in ks)
    if batch_size >= num_nodes or bound < RECEPTIVE_FIELD_WARN_FRACTION * num_nodes:
        return None
    factors = "·".join([f"{batch_size:,}"] + [str(k + 1) for k in ks])
    msg = (f"stage 2: a batch's receptive field B·Π(k+1) = {factors} = {bound:,} rows is "
           f"{bound / max(num_nodes, 1):.2g}x the {num_nodes:,} nodes: batches cover most of the graph, "
           f"so memory no longer depends on stage2.batch_size; lower batch_size or ks, or use fewer layers")
    warnings.warn(msg, stacklevel=2)
    return msg


def predict_nodes(model: Spexphormer, x: Tensor, nodes: Tensor, layers: SampledLayers, batch_size: int,
                  device: torch.device) -> Tensor:
    """Logits of ``nodes`` (in that order) on one sampled graph. Shapes: x [N, F] -> [len(nodes), out]."""
    if nodes.numel() == 0:
        return x.new_empty(0, model.head.out_features)
    out = []
    for batch in iterate_batches(nodes, batch_size, layers, shuffle=False, seed=0):
        out.append(model(x[batch.nodes].to(device), [i.to(device) for i in batch.index],
                         [t.to(device) for t in batch.edge_type]).cpu())
    return torch.cat(out)


def train_wide(
    data: Data,
    scores: Scores,
    cfg: Config,
    seed: int = 0,
    device: torch.device | str = "cpu",
    log_path: str | os.PathLike | None = None,
    progress: bool = True,
    state: TrainingState | None = None,
) -> Stage2Result:
    """Train the wide Spexphormer on graphs sampled from ``scores``; test metric at best validation."""
    s2, device = cfg.stage2, torch.device(device)
    x, y = data.x, data.y
    split = {name: getattr(data, f"{name}_mask") & labelled(y) for name in ("train", "val", "test")}
    nodes = {name: mask.nonzero().view(-1) for name, mask in split.items()}
    eval_batch = s2.eval_batch_size or s2.batch_size
    receptive_field_warning(s2.batch_size, s2.ks, data.num_nodes)
    sampler = LayerSampler(scores, cfg, seed)
    drawn: dict = {}

    def layers_for(epoch: int) -> SampledLayers:
        at = epoch - epoch % s2.resample_every  # a pure function of the epoch: resuming restores it
        if drawn.get("at") != at:
            drawn["layers"], drawn["at"] = sampler.sample(at), at
        return drawn["layers"]

    with seeded(seed):
        args = wide_args(data, cfg)
        model = Spexphormer(**args).to(device)
        net = dp.wrap(model, device)  # DDP with synchronised norms under torchrun; else the model

        def train_epoch(epoch, optimize):
            layers, total, count = layers_for(epoch), 0.0, 0
            # under torchrun: this rank's share of each batch, its loss weighted by its share
            for batch, weight in dp.shard_batches(nodes["train"], s2.batch_size, layers,
                                                  seed=derive_seed(seed, epoch, 1 << 20)):
                logits = net(x[batch.nodes].to(device), [i.to(device) for i in batch.index],
                             [t.to(device) for t in batch.edge_type])
                loss = task_loss(logits, y[batch.core].to(device), data.task)
                optimize(loss if weight == 1.0 else loss * weight)
                total, count = total + loss.item() * batch.core.numel(), count + batch.core.numel()
            return dp.global_mean(total, count)

        def evaluate(epoch):
            layers = drawn["layers"]
            predict = lambda ids: predict_nodes(model, x, ids, layers, eval_batch, device)  # noqa: E731
            return {name: compute_metric(dp.predict_sharded(predict, nodes[name]), y[nodes[name]], data.task,
                                         data.metric) for name in ("val", "test")}

        result = fit(model, train_epoch, evaluate, s2.epochs, s2.lr, s2.weight_decay, s2.warmup_epochs,
                     s2.clip, log_path=log_path, desc=f"stage 2 (seed {seed})", progress=progress, state=state)

    ratio = sum(s2.ks) / len(s2.ks) * data.num_nodes / scores.graph.num_edges
    return Stage2Result(result, model, args, ratio, sampler.seconds)
