"""Neural network modules: attention primitives, layers, and the three models.

* :class:`AttentionScoreEstimator`: stage 1, narrow, full batch, exports per-edge scores.
* :class:`Spexphormer`: stage 2, wide, on sampled fixed-degree neighbour tables.
* :class:`Exphormer`: the full-batch wide baseline (same ``state_dict`` keys as Spexphormer).
* :class:`LocalAttentionNet`: stage 2 beyond the paper, sparse attention plus a local GNN branch.
"""

from spexphormer.nn.sparse import edge_softmax, gather_dot, gather_scatter
from spexphormer.nn.attention import (
    EdgeListAttention,
    NeighbourAttention,
    ScoreAttention,
    neighbour_table_to_edge_list,
)
from spexphormer.nn.norms import NORM_KINDS, GraphNorm, make_norm
from spexphormer.nn.layers import (
    ASELayer,
    ExphormerLayer,
    FeedForward,
    InputEncoder,
    SpexphormerLayer,
    TransformerBackbone,
    TransformerLayer,
)
from spexphormer.nn.models import AttentionScoreEstimator, Exphormer, Spexphormer
from spexphormer.nn.local_attention import LocalAttentionNet

__all__ = [
    "edge_softmax",
    "gather_dot",
    "gather_scatter",
    "neighbour_table_to_edge_list",
    "ScoreAttention",
    "EdgeListAttention",
    "NeighbourAttention",
    "GraphNorm",
    "make_norm",
    "NORM_KINDS",
    "FeedForward",
    "InputEncoder",
    "TransformerLayer",
    "TransformerBackbone",
    "ASELayer",
    "ExphormerLayer",
    "SpexphormerLayer",
    "AttentionScoreEstimator",
    "Exphormer",
    "Spexphormer",
    "LocalAttentionNet",
]
