"""The full-batch Exphormer baseline: the wide network on the whole augmented graph.

It uses the stage-2 width, heads, depth, dropout and optimiser settings, so that the memory
comparison with Spexphormer is at equal model size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch_geometric.data import Data

from spexphormer.errors import ConfigError
from spexphormer.config import Config
from spexphormer.data import graph_info
from spexphormer.graph import AugmentedGraph
from spexphormer.nn import Exphormer
from spexphormer.pipeline.stage1 import augment_graph
from spexphormer.pipeline.stage2 import model_inputs, wide_args
from spexphormer.train import FitResult, compute_metric, fit, task_loss
from spexphormer.train.state import TrainingState
from spexphormer.utils.seed import seeded


@dataclass
class ExphormerResult:
    fit: FitResult
    model: Exphormer
    model_args: dict


def train_exphormer(
    data: Data,
    cfg: Config,
    seed: int = 0,
    device: torch.device | str = "cpu",
    graph: AugmentedGraph | None = None,
    log_path: str | os.PathLike | None = None,
    progress: bool = True,
    state: TrainingState | None = None,
) -> ExphormerResult:
    """Train Exphormer full-batch on the augmented graph; test metric at the best validation epoch."""
    s2, device, info = cfg.stage2, torch.device(device), graph_info(data)
    graph = graph if graph is not None else augment_graph(data, cfg)
    x, y = model_inputs(data, cfg).to(device), data.y.to(device)
    # widened once (the edge-list layers' scatters need int64), not in every layer call
    edge_index, edge_type = graph.edge_index.to(device).long(), graph.edge_type.to(device).long()
    masks = {name: getattr(data, f"{name}_mask").to(device) for name in ("train", "val", "test")}

    with seeded(seed):
        if cfg.stage2.head_pairing != "per-head":
            raise ConfigError("stage2.head_pairing=reference is a sampled-table defect of the authors' wide layer; "
                              "the full-batch Exphormer pairs heads per head only")
        args = wide_args(data, cfg)  # the same width, heads and depth as stage 2
        model = Exphormer(**args).to(device)

        def train_epoch(epoch, optimize):
            logits = model(x, edge_index, edge_type)
            loss = task_loss(logits[masks["train"]], y[masks["train"]], info.task)
            optimize(loss)
            return loss.item()

        def evaluate(epoch):
            logits = model(x, edge_index, edge_type)
            return {name: compute_metric(logits[masks[name]], y[masks[name]], info.task, info.metric)
                    for name in ("val", "test")}

        result = fit(model, train_epoch, evaluate, s2.epochs, s2.lr, s2.weight_decay, s2.warmup_epochs,
                     s2.clip, s2.warmup_rule, log_path=log_path, desc=f"exphormer (seed {seed})", progress=progress, state=state)
    return ExphormerResult(result, model, args)
