"""Graph augmentation (expander edges, self-loops, edge types) and graph fingerprints."""

from spexphormer.graph.augment import (  # noqa: F401
    EXPANDER_EDGE,
    GRAPH_EDGE,
    NUM_EDGE_TYPES,
    SELF_LOOP,
    AugmentedGraph,
    augment,
    expander_edges,
    spectral_gap,
)
from spexphormer.graph.fingerprint import graph_fingerprint  # noqa: F401
