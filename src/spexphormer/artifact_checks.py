"""Content checks of the files stage 1 and stage 2 write, run on every load after the checksum.

A checksum catches bit rot; these checks catch a file that is internally inconsistent however it
came to be (written by a buggy or foreign tool, edited by hand): each failure raises the file's
typed error with a one-line message naming the file.
"""

from __future__ import annotations

import torch
from torch import Tensor

from spexphormer.errors import CheckpointError, ScoresMismatch
from spexphormer.graph import NUM_EDGE_TYPES

_BLOCK_NODES = 1 << 17  # destinations checked at a time
SCORE_SUM_TOLERANCE = 1e-3  # float32 softmax sums over up to ~10^4 in-edges stay well within this


def _tensor(payload: dict, key: str, path, integer: bool) -> Tensor:
    value = payload[key]
    if not isinstance(value, Tensor) or value.is_floating_point() == integer or value.dtype == torch.bool:
        raise ScoresMismatch(f"scores file {path}: '{key}' must be {'an integer' if integer else 'a float'} tensor")
    return value


def check_scores(payload: dict, path) -> None:
    """Shapes consistent, indices in range, edges grouped by destination, scores a distribution per node.

    Shapes:
        edge_index: [2, E]; edge_type: [E]; ptr: [N + 1]; scores: [L, E]
    """
    n = payload["num_nodes"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ScoresMismatch(f"scores file {path}: num_nodes must be a non-negative integer, got {n!r}")
    edges, ptr = _tensor(payload, "edge_index", path, True), _tensor(payload, "ptr", path, True)
    types, scores = _tensor(payload, "edge_type", path, True), _tensor(payload, "scores", path, False)
    e = edges.size(1) if edges.dim() == 2 and edges.size(0) == 2 else -1
    if e < 0 or scores.dim() != 2 or scores.size(1) != e or types.shape != (e,) or ptr.shape != (n + 1,) \
            or int(ptr[0]) != 0 or int(ptr[-1]) != e:
        raise ScoresMismatch(f"scores file {path} is inconsistent: edges of shape {tuple(edges.shape)}, scores "
                             f"of shape {tuple(scores.shape)}, {ptr.numel() - 1} nodes in the offsets of {n}")
    degree = ptr.diff()
    if bool((degree < 0).any()):
        raise ScoresMismatch(f"scores file {path}: the node offsets (ptr) decrease")
    has_edges = degree > 0
    sums = [torch.zeros(n, dtype=torch.float64) for _ in range(scores.size(0))]
    # in blocks of destinations: O(block) temporaries, so that ranks sharing a memory-mapped
    # file do not each hold edge-sized copies while they check it
    for lo in range(0, n, _BLOCK_NODES):
        hi = min(n, lo + _BLOCK_NODES)
        e0, e1 = int(ptr[lo]), int(ptr[hi])
        src, dst, kinds = edges[0, e0:e1], edges[1, e0:e1], types[e0:e1]
        if e1 > e0 and (int(src.min()) < 0 or int(src.max()) >= n):
            raise ScoresMismatch(f"scores file {path}: edge indices outside 0..{n - 1}")
        expected = torch.repeat_interleave(torch.arange(lo, hi, dtype=edges.dtype), degree[lo:hi])
        if not torch.equal(dst, expected):
            raise ScoresMismatch(f"scores file {path}: edges are not grouped by destination as the offsets say")
        if e1 > e0 and (int(kinds.min()) < 0 or int(kinds.max()) >= NUM_EDGE_TYPES):
            raise ScoresMismatch(f"scores file {path}: edge types outside 0..{NUM_EDGE_TYPES - 1}")
        for layer in range(scores.size(0)):
            block = scores[layer, e0:e1]
            if not bool(torch.isfinite(block).all()) or bool((block < 0).any()):
                raise ScoresMismatch(f"scores file {path}: scores must be finite and non-negative")
            sums[layer][lo:hi] = torch.segment_reduce(block, "sum", lengths=degree[lo:hi])
    for layer, layer_sums in enumerate(sums):
        off = (layer_sums - 1).abs().masked_fill(~has_edges, 0)
        if n and float(off.max()) > SCORE_SUM_TOLERANCE:
            node = int(off.argmax())
            raise ScoresMismatch(f"scores file {path}: in layer {layer}, the in-edge scores of node {node} sum "
                                 f"to {float(layer_sums[node]):.6g}, not 1")


#: The checkpoint meta keys that predictions read, and their types (each may be absent or None).
META_TYPES = {"seed": int, "num_nodes": int, "task": str, "metric": str, "scores_file": str, "split": dict,
              "source": dict, "features": dict, "estimator": dict}


def check_checkpoint(payload: dict, path) -> None:
    """The keys :func:`~spexphormer.train.checkpoint.save_checkpoint` writes, of the right types."""
    kinds = {"kind": str, "model_args": dict, "state_dict": dict, "fingerprint": str, "config": dict, "meta": dict}
    for key, kind in kinds.items():
        if not isinstance(payload.get(key), kind):
            raise CheckpointError(f"checkpoint {path}: '{key}' is missing or not a {kind.__name__}")
    bad = [k for k in payload["model_args"] if not isinstance(k, str)]
    if bad:
        raise CheckpointError(f"checkpoint {path}: model argument {bad[0]!r:.60} is not named by a string")
    for key, kind in META_TYPES.items():
        value = payload["meta"].get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool) and kind is int):
            raise CheckpointError(f"checkpoint {path}: meta '{key}' is a {type(value).__name__}, not a {kind.__name__}")
    bad = [k for k, v in payload["state_dict"].items() if not isinstance(v, Tensor)]
    if bad:
        raise CheckpointError(f"checkpoint {path}: weight '{bad[0]}' is not a tensor")
    bad = [k for k, v in payload["state_dict"].items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(f"checkpoint {path}: weight '{bad[0]}' holds NaN or infinite values")
