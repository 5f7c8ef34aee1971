"""Predictions on a graph that has grown since training.

A Spexphormer checkpoint carries the Attention Score Estimator that made its scores (weights,
constructor arguments, export temperature) and a description of the training features. On a
new graph with the same kind of features this module rebuilds the augmented graph (a fresh
expander, ``cfg.graph``), scores its edges with the saved estimator, samples the per-layer
graphs from those scores, and runs the trained wide network, by default on the nodes added
since training (ids from the training graph's node count on).

Output files beside a scores file ``DIR/scores-<key>.pt``: ``DIR/estimator-<key>.pt``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor
from torch_geometric.data import Data

from spexphormer.config import Config
from spexphormer.data import graph_info
from spexphormer.errors import CheckpointError, DataError, one_error_line, shown
from spexphormer.graph import graph_fingerprint
from spexphormer.nn import AttentionScoreEstimator, Exphormer
from spexphormer.nn.wide import wide_model
from spexphormer.pipeline.stage1 import augment_graph
from spexphormer.pipeline.stage2 import model_inputs, predict_sampled
from spexphormer.scores import Scores
from spexphormer.train.checkpoint import load_checkpoint, save_checkpoint
from spexphormer.utils.memory import fits_in_memory

__all__ = ["feature_signature", "check_features", "estimator_path", "save_estimator", "read_estimator",
           "is_new_graph", "load_model", "node_ids", "predict_grown"]


def feature_signature(x: Tensor) -> dict:
    """Width and kind of node features: ``binary`` (all values 0 or 1) or ``real``."""
    binary = bool(((x == 0) | (x == 1)).all()) if x.numel() else True
    return {"width": int(x.size(1)), "kind": "binary" if binary else "real", "dtype": str(x.dtype)}


def check_features(expected: dict, x: Tensor) -> None:
    """Refuse features that the trained networks cannot read (a one-line :class:`DataError`)."""
    got = feature_signature(x)
    if got["width"] != expected["width"]:
        raise DataError(f"the graph has {got['width']} features per node, the checkpoint was trained "
                        f"on {expected['width']}")
    if expected.get("kind") == "binary" and got["kind"] != "binary":
        raise DataError("the checkpoint was trained on binary (0/1) features, this graph has other values")


def estimator_path(scores_path: str | os.PathLike) -> Path:
    """``DIR/estimator-<key>.pt`` beside ``DIR/scores-<key>.pt``."""
    path = Path(scores_path)
    name = path.name.replace("scores", "estimator", 1) if "scores" in path.name else f"estimator-{path.name}"
    return path.with_name(name if name.endswith(".pt") else f"{name}.pt")  # a scores folder: a .pt beside it


def save_estimator(scores_path: str | os.PathLike, model: AttentionScoreEstimator, model_args: dict,
                   scores: Scores, data: Data, cfg: Config) -> Path:
    """Write the estimator beside its scores file (atomically)."""
    return save_checkpoint(estimator_path(scores_path), "estimator", model_args,
                           {k: v.detach().cpu() for k, v in model.state_dict().items()}, scores.fingerprint,
                           cfg.to_dict(), {"temperature": float(scores.temperature),
                                           "features": feature_signature(data.x)})


def read_estimator(scores_path: str | os.PathLike | None) -> dict | None:
    """What a wide checkpoint keeps of the estimator beside ``scores_path``; None if there is none."""
    if not scores_path or not estimator_path(scores_path).is_file():
        return None
    ckpt = load_checkpoint(estimator_path(scores_path))
    return {"model_args": ckpt["model_args"], "state_dict": ckpt["state_dict"],
            "temperature": ckpt["meta"]["temperature"]}


def is_new_graph(ckpt: dict, data: Data | None) -> bool:
    """True when ``data`` is given and is not the graph the checkpoint was trained on."""
    return data is not None and \
        graph_fingerprint(data.edge_index, data.num_nodes, data.num_features) != ckpt["fingerprint"]


_PLAIN = (bool, int, float, str, type(None))


def _plain(value) -> bool:
    """A number, a string, None, or a list or tuple of those (what model constructors take)."""
    return isinstance(value, _PLAIN) or isinstance(value, (list, tuple)) and all(isinstance(i, _PLAIN) for i in value)


def load_model(cls, args: dict, state: dict, what: str):
    """``cls(**args)`` with the weights ``state``, from a checkpoint that may have been edited by hand.

    The arguments are first checked against the constructor and tried on the ``meta`` device (no
    memory): unknown or missing arguments, values of the wrong type, a model larger than this
    machine's memory, or weights of other names or shapes raise a one-line :class:`CheckpointError`.
    """
    import inspect

    accepted = inspect.signature(cls).parameters
    unknown = [k for k in args if k not in accepted]
    if unknown:
        raise CheckpointError(f"{what}: unknown model argument {shown(unknown[0])} for {cls.__name__}")
    odd = next((k for k, v in args.items() if not _plain(v)), None)
    if odd is not None:
        raise CheckpointError(f"{what}: model argument {odd!r} is a {type(args[odd]).__name__}, not a plain value")
    try:
        with torch.device("meta"):
            probe = cls(**args)
    except Exception as exc:  # noqa: BLE001 - whatever a constructor raises on arguments it cannot take
        raise CheckpointError(f"{what}: its model arguments do not build a {cls.__name__} "
                              f"({type(exc).__name__}: {one_error_line(str(exc), 120)})") from None
    expected = probe.state_dict()
    nbytes = sum(t.numel() * t.element_size() for t in expected.values())
    if not fits_in_memory(nbytes):
        raise CheckpointError(f"{what}: its model arguments make a {cls.__name__} of {nbytes / 2**30:,.0f} GiB, "
                              "more than this machine's memory")
    wrong = next((k for k in expected.keys() | state.keys()
                  if k not in state or k not in expected or tuple(state[k].shape) != tuple(expected[k].shape)), None)
    if wrong is not None:
        raise CheckpointError(f"{what} weights do not fit the model: weight {shown(wrong)} is missing, unexpected "
                              "or of another shape")
    model = cls(**args)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{what} weights do not fit the model: {str(exc).splitlines()[0]}") from None
    return model.eval()


def node_ids(nodes, num_nodes: int) -> Tensor:
    """``nodes`` (Python ints) as a LongTensor, each in ``0..num_nodes-1`` and given once.

    Checked as Python ints, before torch sees them: an id beyond int64 is a one-line
    :class:`DataError`, not an overflow.
    """
    nodes = list(nodes)
    bad = next((i for i in nodes if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < num_nodes), None)
    if bad is not None:
        raise DataError(f"node ids must be in 0..{num_nodes - 1}, got {shown(bad)}")
    if len(set(nodes)) < len(nodes):
        seen: set = set()
        twice = next(i for i in nodes if i in seen or seen.add(i))
        raise DataError(f"node {twice} is given twice: give each node id once")
    return torch.as_tensor(nodes, dtype=torch.long)


def _nodes(ckpt: dict, data: Data, nodes) -> Tensor:
    if nodes is None:
        trained = ckpt["meta"].get("num_nodes")
        start = trained if isinstance(trained, int) and 0 <= trained < data.num_nodes else 0
        return torch.arange(start, data.num_nodes)
    return node_ids(nodes, data.num_nodes)


def predict_grown(ckpt: dict, data: Data, nodes=None, device: torch.device | str = "cpu", seed: int = 0,
                  samples: int | None = None) -> dict:
    """Logits on a graph other than the training graph (see the module docstring).

    Returns:
        ``{"nodes": LongTensor [n], "logits": Tensor [n, out], "task": str}``

    Raises:
        CheckpointError: A Spexphormer checkpoint without its estimator.
        DataError: Features of another width or kind; node ids out of range.
    """
    kind, device = ckpt["kind"], torch.device(device)
    if kind != "exphormer" and not ckpt["meta"].get("estimator"):
        raise CheckpointError("the checkpoint was trained on another graph and holds no estimator to score "
                              "a new one (retrain with this version, or give the training graph)")
    expected = ckpt["meta"].get("features") or {"width": ckpt["model_args"]["in_dim"]}
    check_features(expected, data.x)
    ids, cfg = _nodes(ckpt, data, nodes), Config.from_dict(ckpt["config"])
    graph = augment_graph(data, cfg)
    x = data.x.to(device)
    with torch.no_grad():
        if kind == "exphormer":
            model = load_model(Exphormer, ckpt["model_args"], ckpt["state_dict"], "checkpoint").to(device)
            inputs = model_inputs(data, cfg).to(device)  # the degree and propagated columns of the new graph
            logits = model(inputs, graph.edge_index.to(device), graph.edge_type.to(device))[ids.to(device)].cpu()
        else:
            est = ckpt["meta"]["estimator"]
            if not isinstance(est, dict) or not {"model_args", "state_dict", "temperature"} <= est.keys():
                raise CheckpointError("the checkpoint's estimator record is incomplete (model_args, state_dict, "
                                      "temperature)")
            estimator = load_model(AttentionScoreEstimator, est["model_args"], est["state_dict"], "estimator")
            estimator = estimator.to(device)
            _, layer_scores = estimator(x, graph.edge_index.to(device), graph.edge_type.to(device),
                                        temperature=est["temperature"], return_scores=True)
            scores = Scores(layer_scores.float().cpu(), graph,
                            graph_fingerprint(data.edge_index, data.num_nodes, data.num_features))
            model = load_model(wide_model(kind), ckpt["model_args"], ckpt["state_dict"], "checkpoint").to(device)
            logits = predict_sampled(model, data, ids, scores, cfg, seed, device, samples)
    return {"nodes": ids, "logits": logits, "task": ckpt["meta"].get("task") or graph_info(data).task}
