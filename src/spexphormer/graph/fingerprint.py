"""Short fingerprints of a graph's structure and of its train/validation split.

Scores files and checkpoints carry the fingerprints of the graph and of the split they were made
for, so that loading them against another graph, or reusing an estimator trained on another
split's labels, fails loudly instead of silently leaking labels.
"""

from __future__ import annotations

import hashlib

import numpy as np
from torch import Tensor


def graph_fingerprint(edge_index: Tensor, num_nodes: int, num_features: int | None = None) -> str:
    """SHA-256 (first 16 hex digits) of the node count and the sorted edge list.

    Shapes:
        edge_index: [2, E]
    """
    src, dst = np.asarray(edge_index.cpu().numpy(), dtype=np.int64)  # no copy of an int64 edge list
    keys = dst * max(num_nodes, 1)  # the one E-sized temporary, sorted in place
    keys += src
    keys.sort()
    digest = hashlib.sha256()
    digest.update(np.array([num_nodes, keys.size, -1 if num_features is None else num_features],
                           dtype=np.int64).tobytes())
    digest.update(keys.tobytes())
    return digest.hexdigest()[:16]


def split_fingerprint(train_mask: Tensor, val_mask: Tensor) -> str:
    """SHA-256 (first 16 hex digits) of the training and validation masks.

    Everything stage 1 learns from labels is decided by these two masks, so two runs whose masks
    differ must not share a scores file (an estimator trained on one split has seen the other
    split's test labels).

    Shapes:
        train_mask, val_mask: [N] bool
    """
    digest = hashlib.sha256()
    for mask in (train_mask, val_mask):
        bits = np.packbits(mask.cpu().numpy().astype(bool))
        digest.update(np.array([mask.numel()], dtype=np.int64).tobytes())
        digest.update(bits.tobytes())
    return digest.hexdigest()[:16]


def split_identity(train_mask: Tensor, val_mask: Tensor, description: str) -> dict:
    """Which split a model was trained on: ``{"fingerprint": ..., "description": ...}``.

    The fingerprint decides (see :func:`split_fingerprint`); the description (dataset and split,
    e.g. ``"minesweeper, official mask 1 of 10"``) is what error messages show.
    """
    return {"fingerprint": split_fingerprint(train_mask, val_mask), "description": description}


def same_split(recorded: dict | None, current: dict) -> bool:
    return bool(recorded) and recorded.get("fingerprint") == current["fingerprint"]


def describe_split(split: dict | None) -> str:
    if not split:
        return "an unrecorded split"
    return f"{split.get('description', '?')} [split {split.get('fingerprint', '?')[:8]}]"
