"""Predictions of a trained checkpoint (Spexphormer or Exphormer) for all or some nodes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Data

from spexphormer.config import MAX_EVAL_SAMPLES, Config
from spexphormer.data import graph_info
from spexphormer.errors import CheckpointError, ConfigError, DataError, shown
from spexphormer.graph import describe_split, graph_fingerprint, same_split
from spexphormer.nn import Exphormer, LocalAttentionNet, Spexphormer
from spexphormer.pipeline.grown import is_new_graph, load_model, node_ids, predict_grown
from spexphormer.pipeline.stage1 import augment_graph, split_of
from spexphormer.pipeline.stage2 import model_inputs, predict_sampled
from spexphormer.scores import Scores
from spexphormer.train.checkpoint import load_checkpoint
from spexphormer.utils.io import atomic_write, read_small_text

MODELS = {"spexphormer": Spexphormer, "exphormer": Exphormer, "local-attention": LocalAttentionNet}


def _recorded_graph(ckpt: dict, data_root: str | None) -> Data:
    """The graph a checkpoint names, loaded safely: its recorded path is never unpickled (the
    user's ``--trust-pickle`` applies to the ``--data`` file the user named, not to this one)."""
    from spexphormer.data import load_graph
    from spexphormer.data.files import TRUST_FLAG
    source = ckpt["meta"].get("source")
    if not isinstance(source, dict) or not (source.get("dataset") or source.get("path")):
        raise CheckpointError("the checkpoint does not say which graph it was trained on: give --dataset or --data")
    try:
        return load_graph(dataset=source.get("dataset"), path=source.get("path"), root=data_root,
                          split_index=source.get("split_index", 0), symmetrize=source.get("symmetrize"))
    except DataError as exc:
        if TRUST_FLAG not in str(exc):
            raise
        raise DataError(f"the graph file the checkpoint names ({shown(source.get('path'))}) holds types outside "
                        f"PyG's Data, and a path recorded in a checkpoint is never unpickled: if you trust that "
                        f"file, give it yourself with --data PATH {TRUST_FLAG}") from None


def _graph_from(ckpt: dict, data: Data | None, data_root: str | None) -> Data:
    if data is None:
        data = _recorded_graph(ckpt, data_root)
    if graph_fingerprint(data.edge_index, data.num_nodes, data.num_features) != ckpt["fingerprint"]:
        raise CheckpointError("the checkpoint was trained on another graph (fingerprints differ)")
    trained_on, given = ckpt["meta"].get("split"), split_of(data)
    if not same_split(trained_on, given):
        raise CheckpointError(f"the checkpoint was trained on {describe_split(trained_on)}, but the graph given "
                              f"uses {describe_split(given)}: load the graph with the checkpoint's split")
    return data


def predict(checkpoint: str | os.PathLike, data: Data | None = None, data_root: str | None = None,
            scores_path: str | os.PathLike | None = None, nodes: list[int] | None = None,
            device: torch.device | str = "cpu", seed: int | None = None, samples: int | None = None) -> dict:
    """Logits of ``nodes`` (default all) under a checkpoint.

    Spexphormer predictions use graphs sampled from the scores file with ``seed`` (default: the
    checkpoint's training seed, so a run's reported metrics are reproduced): the mean
    predicted distribution over ``samples`` of them (default: the checkpoint's
    ``stage2.eval_samples``, as its run reported its metrics). On a graph
    other than the training graph (e.g. one that has grown) the checkpoint's estimator scores it
    first, and ``nodes`` defaults to the new nodes (:mod:`spexphormer.pipeline.grown`). Without
    ``data`` the graph recorded in the checkpoint is loaded, safely: a ``.pt`` file needing more
    than PyG's ``Data`` types is refused (a checkpoint never makes anything unpickle; load such
    a file yourself with ``load_graph(path=..., trust_pickle=True)`` and pass it as ``data``).

    Returns:
        ``{"nodes": LongTensor [n], "logits": Tensor [n, out], "task": str}``
    """
    ckpt = load_checkpoint(checkpoint)
    if ckpt["kind"] not in MODELS:
        raise CheckpointError(f"unknown model kind {ckpt['kind']!r} in {checkpoint}")
    if samples is not None and not 1 <= samples <= MAX_EVAL_SAMPLES:
        raise ConfigError(f"samples must be in 1..{MAX_EVAL_SAMPLES}, got {samples}")
    if seed is None:
        seed = int(ckpt["meta"].get("seed", 0))
    if is_new_graph(ckpt, data):  # e.g. the training graph with new nodes: score it afresh
        return _finite(predict_grown(ckpt, data, nodes, device, seed, samples))
    data = _graph_from(ckpt, data, data_root)
    cfg, device = Config.from_dict(ckpt["config"]), torch.device(device)
    model = load_model(MODELS[ckpt["kind"]], ckpt["model_args"], ckpt["state_dict"], "checkpoint")
    model.to(device)
    ids = torch.arange(data.num_nodes) if nodes is None else node_ids(nodes, data.num_nodes)
    with torch.no_grad():
        if ckpt["kind"] == "exphormer":
            graph = augment_graph(data, cfg)
            x = model_inputs(data, cfg).to(device)
            logits = model(x, graph.edge_index.to(device), graph.edge_type.to(device))[ids].cpu()
        else:
            path = scores_path or ckpt["meta"].get("scores_file")
            if not path:
                raise CheckpointError("give --scores FILE: the checkpoint does not name its scores file")
            scores = Scores.load(path, ckpt["fingerprint"], ckpt["meta"]["split"])
            logits = predict_sampled(model, data, ids, scores, cfg, seed, device, samples)
    return _finite({"nodes": ids, "logits": logits, "task": ckpt["meta"].get("task") or graph_info(data).task})


def _finite(result: dict) -> dict:
    """``result``, refused when the model's outputs are NaN or infinite for any node (e.g. features
    far outside the range it was trained on): such probabilities are no predictions."""
    logits = result["logits"]
    bad = ~torch.isfinite(logits.reshape(logits.size(0), -1)).all(1)
    if bool(bad.any()):
        first = int(result["nodes"][bad.nonzero()[0, 0]])
        raise DataError(f"the model's outputs are NaN or infinite for {int(bad.sum()):,} of {bad.numel():,} nodes "
                        f"(first: node {first}): are the features far outside the range it was trained on?")
    return result


#: A node-id file larger than this (about a hundred million ids) is refused rather than read.
MAX_NODES_FILE_BYTES = 2**30


def read_node_ids(spec: str) -> list[int]:
    """The node ids of ``predict --nodes``: comma- or space-separated integers, or ``@FILE`` with
    one id per line (a UTF-8 regular file of at most ``MAX_NODES_FILE_BYTES``).

    Raises:
        DataError: An unreadable file, or a token that is not an integer (quoted, cut short).
    """
    if spec.startswith("@"):
        text = read_small_text(spec[1:], MAX_NODES_FILE_BYTES, "node id file", DataError)
    else:
        text = spec.replace(",", " ")
    nodes = []
    for token in text.split():
        try:
            nodes.append(int(token))
        except ValueError:
            raise DataError(f"--nodes must be integers, got {shown(token)}") from None
    return nodes


def write_predictions(result: dict, path: str | os.PathLike) -> Path:
    """CSV: ``node, prediction, score_0..`` (probabilities; binary: probability of class 1)."""
    logits, task = result["logits"], result["task"]
    if task == "binary":
        prob = torch.sigmoid(logits.view(-1, 1))
        pred = (prob[:, 0] > 0.5).long().view(-1, 1)
    elif task == "multilabel":
        prob = torch.sigmoid(logits)
        pred = None
    else:
        prob = logits.softmax(-1)
        pred = prob.argmax(-1, keepdim=True)
    ids = [result["nodes"].view(-1, 1)] + ([pred.view(-1, 1)] if pred is not None else [])
    ints = torch.cat(ids, 1).numpy()  # [n, 1 or 2]
    header = ["node"] + (["prediction"] if pred is not None else []) + [f"score_{i}" for i in range(prob.size(1))]
    fmt = ["%d"] * ints.shape[1] + ["%.6g"] * prob.size(1)
    table = np.hstack([ints.astype(np.float64), prob.double().numpy()])
    return atomic_write(path, lambda handle: np.savetxt(handle, table, fmt=fmt, delimiter=",",
                                                       header=",".join(header), comments=""))
