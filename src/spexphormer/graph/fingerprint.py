"""A short, order-independent fingerprint of a graph's structure.

Scores files and checkpoints carry the fingerprint of the graph they were made for, so that
loading them against another graph fails loudly (METHOD §6.6).
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
    src, dst = edge_index.cpu().numpy().astype(np.int64)
    keys = np.sort(dst * max(num_nodes, 1) + src)
    digest = hashlib.sha256()
    digest.update(np.array([num_nodes, keys.size, -1 if num_features is None else num_features],
                           dtype=np.int64).tobytes())
    digest.update(keys.tobytes())
    return digest.hexdigest()[:16]
