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

Two layouts hold the same contents:

* one ``torch.save`` file (``scores-<key>.pt``), loaded into the process's memory;
* a folder of ``.npy`` arrays (``edge_index``, ``edge_type``, ``ptr``, ``scores``) and a
  ``manifest.json`` with their SHA-256s and the rest (:mod:`spexphormer.utils.npy_folder`),
  which every process of a machine memory-maps read-only, so the page cache holds it once.
  Several ranks can write it together, each its slice of the edges
  (:func:`start_scores_folder`, :func:`write_scores_slice`, :func:`seal_scores_folder`).

:meth:`Scores.save` picks the layout by the name (``.pt``: the file; else the folder), and
:meth:`Scores.load` reads either.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from spexphormer.artifact_checks import check_scores
from spexphormer.errors import ScoresMismatch
from spexphormer.graph.augment import AugmentedGraph
from spexphormer.graph.fingerprint import describe_split, same_split
from spexphormer.utils import npy_folder
from spexphormer.utils.checksum import load_sealed, save_sealed

FORMAT = "spexphormer-scores"
VERSION = 3  # 2: records the split its estimator trained on; 3: carries a SHA-256 of its contents
LEGACY = (1, 2)  # readable older versions (no checksum)
FOLDER_FORMAT, FOLDER_VERSION = "spexphormer-scores-folder", 1
_ARRAYS = ("edge_index", "edge_type", "ptr", "scores")
_META = ("fingerprint", "split", "num_nodes", "config", "config_key", "temperature", "metrics")


def is_folder_path(path: str | os.PathLike) -> bool:
    """Does ``path`` name the folder layout (an existing folder, or a new name without ``.pt``)?"""
    path = Path(path)
    return path.is_dir() or (not path.exists() and path.suffix not in (".pt", ".pth"))


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

    def meta(self) -> dict[str, Any]:
        """Everything but the arrays (what the folder layout keeps in its manifest)."""
        return {"fingerprint": self.fingerprint, "split": self.split, "num_nodes": self.graph.num_nodes,
                "config": self.config, "config_key": self.config_key, "temperature": float(self.temperature),
                "metrics": self.metrics}

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically: one file for a ``.pt`` name, else the memory-mappable folder."""
        if is_folder_path(path):
            return write_scores_folder(path, self)
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
             split: dict[str, str] | None = None, check: bool = True) -> "Scores":
        """Read a scores file; with ``fingerprint``, also check that it belongs to that graph, and
        with ``split`` (:func:`~spexphormer.graph.split_identity`) that its estimator was trained
        on that split. A folder is memory-mapped read-only (its tensors share the page cache).
        ``check=False`` (a folder this job has just written) skips the checksums and the
        contents' checks (:func:`~spexphormer.artifact_checks.check_scores`)."""
        if Path(path).is_dir():
            payload = _read_folder(path, verify=check)
        else:
            payload = load_sealed(path, FORMAT, VERSION, ScoresMismatch, "scores file", LEGACY)
        missing = {"fingerprint", "num_nodes", "edge_index", "edge_type", "ptr", "scores"} - payload.keys()
        if missing:
            raise ScoresMismatch(f"scores file {path} lacks {', '.join(sorted(missing))}")
        if fingerprint is not None and payload["fingerprint"] != fingerprint:
            raise ScoresMismatch(f"scores file {path} was made for another graph "
                                 f"(fingerprint {payload['fingerprint']}, this graph {fingerprint})")
        if check:
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


def _read_folder(path: str | os.PathLike, verify: bool = True) -> dict[str, Any]:
    arrays, meta, version = npy_folder.read_folder(path, FOLDER_FORMAT, (FOLDER_VERSION,), ScoresMismatch, verify)
    missing = (set(_ARRAYS) - arrays.keys()) | (set(_META) - meta.keys())
    if missing:
        raise ScoresMismatch(f"scores folder {path} lacks {', '.join(sorted(missing))}")
    return {"version": version, **{k: meta[k] for k in _META},
            **{k: npy_folder.as_tensor(arrays[k]) for k in _ARRAYS}}


def start_scores_folder(target: str | os.PathLike, num_nodes: int, num_edges: int, num_layers: int,
                        index_dtype: torch.dtype = torch.int32, graph_files: dict[str, Path] | None = None) -> Path:
    """A temporary scores folder beside ``target`` with every array preallocated, for
    :func:`write_scores_slice` (by any process, each its edges) and :func:`seal_scores_folder`.

    ``graph_files``: ``.npy`` files that already hold ``edge_index``, ``edge_type`` and ``ptr``
    in this layout (e.g. the machine's shared augmented graph): hard-linked where the file system
    allows (so a process that maps both maps one set of pages), else copied."""
    tmp = npy_folder.start_folder(target)
    for name, file in (graph_files or {}).items():
        try:
            os.link(file, tmp / f"{name}.npy")
        except OSError:
            shutil.copyfile(file, tmp / f"{name}.npy")
    index = "int32" if index_dtype == torch.int32 else "int64"
    shapes = {"edge_index": (index, (2, num_edges)), "edge_type": ("int8", (num_edges,)),
              "ptr": ("int64", (num_nodes + 1,)), "scores": ("float32", (num_layers, num_edges))}
    for name, (dtype, shape) in shapes.items():
        if name not in (graph_files or {}):
            npy_folder.preallocate(tmp, name, dtype, shape)
    return tmp


def write_scores_slice(tmp: str | os.PathLike, edge_lo: int, scores: Tensor, edge_index: Tensor | None = None,
                       edge_type: Tensor | None = None, ptr: Tensor | None = None) -> None:
    """Edges ``[edge_lo, edge_lo + E_r)`` of the preallocated arrays (the graph's only where
    given: not when :func:`start_scores_folder` linked them); ``ptr`` (all ``N + 1`` offsets) from
    one writer.

    Shapes:
        scores: [L, E_r]; edge_index: [2, E_r]; edge_type: [E_r]; ptr: [N + 1]
    """
    hi = edge_lo + scores.size(1)
    parts = {"scores": (np.s_[:, edge_lo:hi], scores.detach().float())}
    if edge_index is not None:
        parts["edge_index"] = (np.s_[:, edge_lo:hi], edge_index)
        parts["edge_type"] = (np.s_[edge_lo:hi], edge_type.to(torch.int8))
    if ptr is not None:
        parts["ptr"] = (np.s_[:], ptr.to(torch.int64))
    for name, (where, values) in parts.items():
        out = npy_folder.open_for_writing(tmp, name)
        out[where] = values.cpu().numpy()
        out.flush()
        del out


def write_scores_folder(target: str | os.PathLike, scores: "Scores") -> Path:
    """``scores`` as a folder, written by one process."""
    g = scores.graph
    tmp = start_scores_folder(target, g.num_nodes, g.num_edges, scores.num_layers, g.edge_index.dtype)
    write_scores_slice(tmp, 0, scores.scores, g.edge_index, g.edge_type, g.ptr)
    return seal_scores_folder(tmp, target, scores.meta())


def seal_scores_folder(tmp: str | os.PathLike, target: str | os.PathLike, meta: dict[str, Any]) -> Path:
    """Checksum, manifest (``meta``: :data:`_META`'s keys) and the rename into place."""
    return npy_folder.seal_folder(tmp, target, FOLDER_FORMAT, FOLDER_VERSION, meta)
