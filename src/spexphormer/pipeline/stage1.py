"""Stage 1: train the Attention Score Estimator full-batch and export its scores (docs/method.md §3)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch_geometric.data import Data

from spexphormer.config import RESTART_STRIDE, Config
from spexphormer.data import graph_info
from spexphormer.graph import AugmentedGraph, ExpanderAugment, graph_fingerprint, split_identity
from spexphormer.nn import AttentionScoreEstimator
from spexphormer.nn.csr_attention import CSRGraph
from spexphormer.scores import Scores
from spexphormer.train import FitResult, chance_level, compute_metric, fit, output_dim, task_loss, temperature
from spexphormer.train.state import TrainingState, attempt_path
from spexphormer.utils.memory import release_free_memory
from spexphormer.utils.seed import seeded


@dataclass
class Stage1Result:
    scores: Scores
    fit: FitResult
    model: AttentionScoreEstimator


def augment_graph(data: Data, cfg: Config) -> AugmentedGraph:
    """The augmented attention graph of ``data`` under ``cfg.graph`` (via :class:`ExpanderAugment`)."""
    return ExpanderAugment.from_config(cfg.graph).augmented_graph(data)


def split_of(data: Data) -> dict:
    """The identity of the split ``data`` trains on (recorded in scores files and checkpoints)."""
    info = graph_info(data)
    return split_identity(data.train_mask, data.val_mask, f"{info.name}, {info.split}")


def estimator_args(data: Data, cfg: Config) -> dict:
    s1, info = cfg.stage1, graph_info(data)
    return dict(in_dim=data.num_features, out_dim=output_dim(info.task, info.num_classes),
                hidden=s1.hidden, num_layers=s1.num_layers, heads=s1.heads, norm=s1.norm,
                dropout=s1.dropout, pre_layers=s1.pre_layers, type_terms=s1.type_terms)


def export_temperature(best_epoch: int, last_epoch: int, s1) -> float:
    """The temperature at which the best checkpoint's scores are exported.

    ``"best"``: the schedule's value at the best-validation epoch (T = 1 when that epoch comes
    before annealing starts). ``"reference"``: the same once annealing has started, else the last
    temperature the schedule reached — what the authors' code does, since its temperature is
    only updated from ``temp_wait`` on and the export then keeps the last value set.
    """
    temp = lambda epoch: temperature(epoch, s1.temp_ratio, s1.temp_wait, s1.temp_min)  # noqa: E731
    if s1.export_temperature == "reference" and best_epoch < s1.temp_wait:
        return temp(last_epoch)
    return temp(best_epoch)


#: How far above chance (:func:`~spexphormer.train.metrics.chance_level`) the estimator's best
#: validation metric must be for its scores to pass without a warning. A collapsed estimator
#: (attention all on expander and self-loop edges) ends near chance: the authors' code once
#: reached 0.54 ROC-AUC on Minesweeper, where 13 runs of theirs and 20 of ours otherwise reached
#: at least 0.71.
NEAR_CHANCE = {"rocauc": 0.1, "accuracy": 0.02}


def warn_if_near_chance(data: Data, result: FitResult) -> None:
    """A warning when the estimator barely beat a predictor that ignores its input."""
    info = graph_info(data)
    chance = chance_level(data.y[data.val_mask], info.task, info.metric)
    if result.val < chance + NEAR_CHANCE.get(info.metric, 0.0):
        warnings.warn(f"the estimator's best validation {info.metric} is {result.val:.3f}, near chance "
                      f"({chance:.3f}): its scores may guide the sampling little better than uniform ones; "
                      f"--set stage1.restarts=3 trains three estimators and keeps the best", stacklevel=2)


def restart_seeds(s1) -> list[int]:
    """The seeds of the estimator's ``stage1.restarts`` (the first is ``stage1.seed``)."""
    return [s1.seed + RESTART_STRIDE * i for i in range(s1.restarts)]


def best_of_restarts(s1, train_one: Callable, state: TrainingState | None, log_path) -> tuple:
    """Train ``stage1.restarts`` estimators, each seeded by :func:`restart_seeds` with its own
    snapshots and log (restart ``i > 0``: ``stage1.attempt<i>.jsonl`` beside ``log_path``), and
    keep the one with the best validation metric (the first of equals).

    ``train_one(name, log_path, state) -> (model, FitResult)`` trains one, inside its seed
    (``name``: "estimator", or "estimator 2/3" among restarts).
    Returns (model, FitResult, one record per restart).
    """
    best, tried = None, []
    for i, seed in enumerate(restart_seeds(s1)):
        name = "estimator" if s1.restarts == 1 else f"estimator {i + 1}/{s1.restarts}"
        with seeded(seed):
            model, result = train_one(name, None if log_path is None else attempt_path(log_path, i),
                                      None if state is None else state.attempt(i))
        tried.append({"seed": seed, "best_epoch": result.best_epoch, "val": result.val, "test": result.test})
        if best is None or result.val > best[1].val:
            best = (model, result)
    return best[0], best[1], tried


def estimate(
    data: Data,
    cfg: Config,
    out: str | os.PathLike | None = None,
    device: torch.device | str = "cpu",
    graph: AugmentedGraph | None = None,
    log_path: str | os.PathLike | None = None,
    progress: bool = True,
    fused: bool = True,
    state: TrainingState | None = None,
) -> Stage1Result:
    """Train the estimator on the whole augmented graph and return (and save) its scores.

    Args:
        data: the input graph (``x``, ``y``, ``edge_index``, masks, ``info``).
        cfg: ``cfg.graph`` builds the augmented graph, ``cfg.stage1`` the estimator.
        out: where to write the scores file (atomically); nothing is written when None.
        graph: a ready augmented graph (e.g. without expander edges, for analysis).
        fused: on the CPU, run the attention in the fused CSR kernels
            (:mod:`spexphormer.nn.csr_attention`, the same function); False keeps the edge-list
            kernels (the reference, and the baseline of ``benchmarks/large.py``).
        state: training snapshots, to resume an interrupted estimator (see :mod:`spexphormer.train.state`).

    Under torchrun, :func:`~spexphormer.pipeline.stage1_sharded.estimate_sharded` shares the
    nodes between the ranks (``run`` and ``estimate`` on the command line pick it).
    """
    s1, device, info = cfg.stage1, torch.device(device), graph_info(data)
    graph = graph if graph is not None else augment_graph(data, cfg)
    # now, while nothing edge-sized but the graph is alive (its sort's temporary would otherwise
    # add to the peak of the export)
    fingerprint = graph_fingerprint(data.edge_index, data.num_nodes, data.num_features)
    x, y = data.x.to(device), data.y.to(device)
    masks = {name: getattr(data, f"{name}_mask").to(device) for name in ("train", "val", "test")}
    csr = CSRGraph.from_graph(graph) if fused and device.type == "cpu" else None  # once per graph
    edge_index, edge_type = graph.edge_index.to(device), graph.edge_type.to(device)
    if csr is None:  # the edge-list kernels' scatters need int64: widened once, not in every layer
        edge_index, edge_type = edge_index.long(), edge_type.long()
    temp = lambda epoch: temperature(epoch, s1.temp_ratio, s1.temp_wait, s1.temp_min)  # noqa: E731

    def train_one(name, log_path, state):
        model = AttentionScoreEstimator(**estimator_args(data, cfg)).to(device)

        def train_epoch(epoch, optimize):
            logits = model(x, edge_index, edge_type, temperature=temp(epoch), csr=csr)
            loss = task_loss(logits[masks["train"]], y[masks["train"]], info.task)
            optimize(loss)
            return loss.item()

        def evaluate(epoch):
            logits = model(x, edge_index, edge_type, temperature=temp(epoch), csr=csr)
            return {name: compute_metric(logits[m], y[m], info.task, info.metric) for name, m in masks.items()}

        return model, fit(model, train_epoch, evaluate, s1.epochs, s1.lr, s1.weight_decay, s1.warmup_epochs,
                          s1.clip, s1.warmup_rule, epoch_info=lambda e: {"temperature": round(temp(e), 5)},
                          log_path=log_path, desc=f"stage 1 ({name})", progress=progress, state=state)

    model, result, tried = best_of_restarts(s1, train_one, state, log_path)
    warn_if_near_chance(data, result)

    model.eval()
    release_free_memory()  # the training steps' freed blocks: the export's L x E scores come next
    t_export = export_temperature(result.best_epoch, len(result.history) - 1, s1)
    with torch.no_grad():
        _, layer_scores = model(x, edge_index, edge_type, temperature=t_export, return_scores=True, csr=csr)
    scores = exported_scores(data, cfg, graph, layer_scores.float().cpu(), fingerprint, t_export, result, out,
                             **restart_metrics(tried))
    return Stage1Result(scores, result, model)


def restart_metrics(tried: list[dict]) -> dict:
    """What the scores' metrics record of the restarts (nothing for the single estimator)."""
    return {"restarts": tried} if len(tried) > 1 else {}


def exported_scores(data: Data, cfg: Config, graph: AugmentedGraph, layer_scores: Tensor, fingerprint: str,
                    temperature: float, result: FitResult, out: str | os.PathLike | None = None,
                    **metrics) -> Scores:
    """The estimator's scores with what they were made from (graph, split, stage-1 config, export
    temperature, metrics), saved atomically to ``out`` when given. Shapes: layer_scores [L, E]."""
    scores = Scores(
        scores=layer_scores,
        graph=graph,
        fingerprint=fingerprint,
        split=split_of(data),
        config={"graph": cfg.to_dict()["graph"], "stage1": cfg.to_dict()["stage1"]},
        config_key=cfg.stage1_key(),
        temperature=temperature,
        metrics={"metric": graph_info(data).metric, "val": result.val, "test": result.test,
                 "best_epoch": result.best_epoch, **metrics},
    )
    if out is not None:
        scores.save(Path(out))
    return scores
