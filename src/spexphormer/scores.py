"""The scores file: stage 1's output and stage 2's input.

One file holds, for one graph, the attention score of every augmented edge in every layer of the
Attention Score Estimator, the augmented edge list and edge types, the fingerprint of the input
graph, the split the estimator was trained on (fingerprint of the train and validation masks and a
readable description), the configuration that produced it, the temperature at export and the
estimator's own metrics. It is written atomically with a SHA-256 of its contents and checked on
load (checksum, then :func:`~spexphormer.artifact_checks.check_scores`): a truncated, corrupt or
inconsistent file, another format, a file made for another graph, or one whose estimator trained
on another split (whose labels may include this split's test nodes) raises
:class:`~spexphormer.errors.ScoresMismatch`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from spexphormer.artifact_checks import check_scores
from spexphormer.errors import ScoresMismatch
from spexphormer.graph.augment import AugmentedGraph
from spexphormer.graph.fingerprint import describe_split, same_split
from spexphormer.utils.checksum import load_sealed, save_sealed

FORMAT = "spexphormer-scores"
VERSION = 3  # 2: records the split its estimator trained on; 3: carries a SHA-256 of its contents
LEGACY = (1, 2)  # readable older versions (no checksum)


@dataclass
class Scores:
    """Per-layer attention scores over an augmented graph.

    Shapes:
        scores: [L, E], each layer sums to 1 over every node's incoming edges
        graph.edge_index: [2, E], sorted by destination
    """

    scores: Tensor
    graph: AugmentedGraph
    fingerprint: str
    config: dict[str, Any] = field(default_factory=dict)
    config_key: str = ""
    temperature: float = 1.0
    metrics: dict[str, Any] = field(default_factory=dict)
    split: dict[str, str] = field(default_factory=dict)  # graph.split_identity of the estimator's split

    @property
    def num_layers(self) -> int:
        return self.scores.size(0)

    def save(self, path: str | os.PathLike) -> Path:
        g = self.graph
        payload = {
            "format": FORMAT, "version": VERSION, "fingerprint": self.fingerprint, "split": self.split,
            "num_nodes": g.num_nodes, "edge_index": g.edge_index, "edge_type": g.edge_type.to(torch.int8),
            "ptr": g.ptr, "scores": self.scores.float().contiguous(), "config": self.config,
            "config_key": self.config_key, "temperature": float(self.temperature), "metrics": self.metrics,
        }
        return save_sealed(payload, path)

    @classmethod
    def load(cls, path: str | os.PathLike, fingerprint: str | None = None,
             split: dict[str, str] | None = None) -> "Scores":
        """Read a scores file; with ``fingerprint``, also check that it belongs to that graph, and
        with ``split`` (:func:`~spexphormer.graph.split_identity`) that its estimator was trained
        on that split."""
        payload = load_sealed(path, FORMAT, VERSION, ScoresMismatch, "scores file", LEGACY)
        missing = {"fingerprint", "num_nodes", "edge_index", "edge_type", "ptr", "scores"} - payload.keys()
        if missing:
            raise ScoresMismatch(f"scores file {path} lacks {', '.join(sorted(missing))}")
        if fingerprint is not None and payload["fingerprint"] != fingerprint:
            raise ScoresMismatch(f"scores file {path} was made for another graph "
                                 f"(fingerprint {payload['fingerprint']}, this graph {fingerprint})")
        check_scores(payload, path)
        recorded = payload.get("split") or {}
        if split is not None and not recorded:
            raise ScoresMismatch(f"scores file {path} (format version {payload['version']}) does not record which "
                                 f"split its estimator was trained on; run stage 1 again for {describe_split(split)}")
        if split is not None and not same_split(recorded, split):
            raise ScoresMismatch(f"scores file {path} was made on another split: its estimator trained on "
                                 f"{describe_split(recorded)}, this run uses {describe_split(split)}")
        n, edges, scores, ptr = payload["num_nodes"], payload["edge_index"], payload["scores"], payload["ptr"]
        graph = AugmentedGraph.compact(edges, payload["edge_type"], ptr, n)  # older files: int64 ids
        return cls(scores, graph, payload["fingerprint"], payload.get("config", {}), payload.get("config_key", ""),
                   payload.get("temperature", 1.0), payload.get("metrics", {}), recorded)
