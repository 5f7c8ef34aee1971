"""The augmented graph: expander edges, self-loops, edge types, grouping by destination (CSR),
graph fingerprints, and inputs computed on the whole graph (degree, propagated features)."""

from spexphormer.graph.augment import (  # noqa: F401
    EXPANDER_EDGE,
    GRAPH_EDGE,
    NUM_EDGE_TYPES,
    PAD_EDGE,
    SELF_LOOP,
    AugmentedGraph,
    augment,
    expander_edges,
    ramanujan_gap,
    spectral_gap,
)
from spexphormer.graph.csr import gather_edges, group_by_destination  # noqa: F401
from spexphormer.graph.features import input_features, input_width, propagate  # noqa: F401
from spexphormer.graph.fingerprint import (  # noqa: F401
    describe_split,
    graph_fingerprint,
    same_split,
    split_fingerprint,
    split_identity,
)
from spexphormer.graph.transform import ExpanderAugment  # noqa: F401
