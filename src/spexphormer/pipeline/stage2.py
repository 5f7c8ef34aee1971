"""Stage 2: train the wide network on graphs sampled from the estimator's scores.

Each resampling period draws one sample of per-layer neighbour tables
(:class:`~spexphormer.sampling.LayerSampler`); training walks mini-batches of target nodes over it,
and evaluation uses the same kind of sampled graph (docs/method.md §4). A prediction on one sampled
graph is itself random; with ``stage2.eval_samples`` > 1 the best model's reported metrics and
``predict`` average the predicted distributions over that many sampled graphs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor, nn
from torch_geometric.data import Data, FeatureStore

from spexphormer.config import Config
from spexphormer.data import graph_info
from spexphormer.data.stores import as_feature_store, node_rows
from spexphormer.distributed import data_parallel as dp
from spexphormer.distributed import world
from spexphormer.distributed.machine_share import SharedSamples
from spexphormer.graph.features import input_features, input_width
from spexphormer.nn import Spexphormer
from spexphormer.nn.wide import wide_model
from spexphormer.sampling import Batch, LayerSampler, SampledLayers, derive_seed, iterate_batches, receptive_field_warning
from spexphormer.scores import Scores
from spexphormer.train import FitResult, compute_metric, fit, mean_prediction, output_dim, task_loss
from spexphormer.train.metrics import labelled
from spexphormer.train.state import TrainingState
from spexphormer.utils.memory import release_free_memory
from spexphormer.utils.seed import seeded


@dataclass
class Stage2Result:
    fit: FitResult
    model: Spexphormer
    model_args: dict
    edge_ratio: float
    sampling_seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def model_inputs(data: Data, cfg: Config) -> Tensor:
    """The wide model's input features ``[N, F']``: ``data.x`` and the columns that
    ``stage2.degree_feature`` and ``stage2.feature_hops`` add (computed on the whole graph)."""
    return input_features(data.x, data.edge_index, cfg.stage2.degree_feature, cfg.stage2.feature_hops)


def wide_args(data: Data, cfg: Config) -> dict:
    """The wide model's constructor arguments: the data's sizes and ``cfg.stage2``."""
    s2, info = cfg.stage2, graph_info(data)
    args = dict(in_dim=input_width(data.num_features, s2.degree_feature, s2.feature_hops),
                out_dim=output_dim(info.task, info.num_classes), hidden=s2.hidden, heads=s2.heads, num_layers=s2.num_layers, dropout=s2.dropout, norm=s2.norm,
                pre_layers=s2.pre_layers, scale_logits=s2.scale_logits, type_terms=s2.type_terms)
    if s2.model == "local-attention":
        args.update(local=s2.local, branches=s2.branches, jk=s2.jk, input_dropout=s2.input_dropout)
    elif s2.head_pairing != "per-head":  # recorded only when it differs: older checkpoints lack it
        args.update(head_pairing=s2.head_pairing)
    return args


def build_wide_model(data: Data, cfg: Config) -> nn.Module:
    """The untrained wide model ``cfg.stage2`` asks for (``stage2.recompute`` set on it: a way to
    train, not part of the architecture, so not among the checkpoint's constructor arguments)."""
    model = wide_model(cfg.stage2.model)(**wide_args(data, cfg))
    model.recompute = cfg.stage2.recompute
    return model


def layer_sampler(scores: Scores | None, cfg: Config, seed: int, stores=None) -> LayerSampler:
    """The sampler ``cfg.stage2`` asks for, reading ``scores`` (or ``stores``: a PyG
    ``(FeatureStore, GraphStore)`` pair, see :class:`~spexphormer.sampling.LayerSampler`)."""
    s2 = cfg.stage2
    share = SharedSamples() if world().active else None  # under torchrun: drawn once per machine
    return LayerSampler(scores, s2.ks, s2.sampler, s2.keep_graph_edges, seed, s2.resample_every,
                        graph_ks=s2.graph_ks or None, expander_ks=s2.expander_ks or None, stores=stores, share=share)


def forward_batch(model: nn.Module, x: Tensor | FeatureStore, batch: Batch, device: torch.device) -> Tensor:
    """The model's output for a batch's core nodes, its inputs read through a PyG ``FeatureStore``
    (``x`` itself, or one over the tensor ``x``: :mod:`spexphormer.data.stores`).

    Shapes: x [N, F] -> [B, out]."""
    inputs = node_rows(as_feature_store(x), batch.nodes).to(device)
    batch = batch.to(device)
    return model(inputs, batch.index, batch.edge_type)


def batch_loss(model: nn.Module, x: Tensor, data: Data, batch: Batch, device: torch.device) -> Tensor:
    """The task loss of one training batch (its core nodes' labels). ``x``: :func:`model_inputs`."""
    return task_loss(forward_batch(model, x, batch, device), data.y[batch.core].to(device), graph_info(data).task)


def predict_nodes(model: nn.Module, x: Tensor | FeatureStore, nodes: Tensor, layers: SampledLayers, batch_size: int,
                  device: torch.device) -> Tensor:
    """Outputs of ``nodes`` (in that order) on one sampled graph. Shapes: x [N, F] -> [len(nodes), out]."""
    if nodes.numel() == 0:
        return torch.empty(0, model.head.out_features)
    return torch.cat([forward_batch(model, x, batch, device).cpu()
                      for batch in iterate_batches(nodes, batch_size, layers, shuffle=False, seed=0)])


def predict_averaged(predict: Callable[[SampledLayers], Tensor], sampler: LayerSampler, samples: int,
                     task: str) -> Tensor:
    """``predict``'s outputs averaged over ``samples`` sampled graphs (the first ``samples`` epochs'
    samples of ``sampler``; drawn one at a time, so one sample's tables are held at once), as
    logits of the mean predicted distribution (:func:`~spexphormer.train.mean_prediction`)."""
    return mean_prediction([predict(sampler.sample(i)) for i in range(samples)], task)


def predict_sampled(model: nn.Module, data: Data, nodes: Tensor, scores: Scores, cfg: Config, seed: int,
                    device: torch.device, samples: int | None = None) -> Tensor:
    """Outputs of ``nodes`` averaged over the first ``samples`` (default ``stage2.eval_samples``)
    samples the run of ``seed`` would draw from ``scores``; one sample: its first."""
    x, batch = model_inputs(data, cfg), cfg.stage2.eval_batch_size or cfg.stage2.batch_size
    return predict_averaged(lambda layers: predict_nodes(model, x, nodes, layers, batch, device),
                            layer_sampler(scores, cfg, seed), samples or cfg.stage2.eval_samples,
                            graph_info(data).task)


def train_wide(
    data: Data,
    scores: Scores,
    cfg: Config,
    seed: int = 0,
    device: torch.device | str = "cpu",
    log_path: str | os.PathLike | None = None,
    progress: bool = True,
    state: TrainingState | None = None,
    inputs: Tensor | FeatureStore | None = None,
) -> Stage2Result:
    """Train the wide Spexphormer on graphs sampled from ``scores``; test metric at best validation.

    The best epoch is chosen on each epoch's one sampled graph; with ``stage2.eval_samples`` > 1
    the best model's validation and test metrics are then those of its predictions averaged over
    that many sampled graphs (``result.extra["one_sample"]`` keeps the best epoch's own).
    ``inputs``: :func:`model_inputs` of ``data``, when the caller has them (several seeds share them).
    """
    s2, device, info = cfg.stage2, torch.device(device), graph_info(data)
    split = {name: getattr(data, f"{name}_mask") & labelled(data.y) for name in ("train", "val", "test")}
    nodes = {name: mask.nonzero().view(-1) for name, mask in split.items()}
    eval_batch = s2.eval_batch_size or s2.batch_size
    receptive_field_warning(s2.batch_size, s2.slots(), data.num_nodes)
    release_free_memory()  # what stage 1 (or the last seed) freed: each rank would keep its own
    sampler = layer_sampler(scores, cfg, seed)
    # every batch reads its rows through a PyG FeatureStore (the default: over the mapped tensor)
    x = as_feature_store(model_inputs(data, cfg) if inputs is None else inputs)

    def train_epoch(epoch: int, optimize) -> float:
        layers, total, count = sampler.layers_for(epoch), 0.0, 0
        # under torchrun: this rank's share of each batch, its loss weighted by its share
        for batch, weight in dp.shard_batches(nodes["train"], s2.batch_size, layers,
                                              seed=derive_seed(seed, epoch, 1 << 20)):
            loss = batch_loss(net, x, data, batch, device)
            optimize(loss if weight == 1.0 else loss * weight)
            total, count = total + loss.item() * batch.core.numel(), count + batch.core.numel()
        return dp.global_mean(total, count)

    def evaluate(epoch: int, samples: int = 1) -> dict[str, float]:
        # one pass over val and test together: their receptive fields overlap (on a small graph both
        # are the whole graph); evaluation-mode batch norm makes a node's output batch-independent
        both = torch.cat([nodes["val"], nodes["test"]])

        def on(layers: SampledLayers) -> Tensor:  # under torchrun each rank predicts a share
            return dp.predict_sharded(lambda ids: predict_nodes(model, x, ids, layers, eval_batch, device), both)

        out = on(sampler.current) if samples == 1 else predict_averaged(on, sampler, samples, info.task)
        out = out.split([nodes["val"].numel(), nodes["test"].numel()])
        return {name: compute_metric(o, data.y[nodes[name]], info.task, info.metric)
                for name, o in zip(("val", "test"), out)}

    with seeded(seed):  # one random stream: initialisation, then dropout and batch order
        args = wide_args(data, cfg)
        model = build_wide_model(data, cfg).to(device)
        net = dp.wrap(model, device)  # DDP with synchronised norms under torchrun; else the model
        result = fit(model, train_epoch, evaluate, s2.epochs, s2.lr, s2.weight_decay, s2.warmup_epochs,
                     s2.clip, s2.warmup_rule, log_path=log_path, desc=f"stage 2 (seed {seed})", progress=progress, state=state)
    extra = {}
    if s2.eval_samples > 1:  # the best weights are loaded: evaluate them on several sampled graphs
        model.eval()
        with torch.no_grad():
            averaged = evaluate(result.best_epoch, s2.eval_samples)
        extra["one_sample"] = {"val": result.val, "test": result.test}
        result.val, result.test = averaged["val"], averaged["test"]

    ratio = sum(s2.slots()) / len(s2.slots()) * data.num_nodes / scores.graph.num_edges
    return Stage2Result(result, model, args, ratio, sampler.seconds, extra)
