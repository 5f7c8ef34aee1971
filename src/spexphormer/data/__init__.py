"""Graph datasets: named benchmarks, user files, synthetic graphs, and their validation.

Every loader returns a :class:`torch_geometric.data.Data` with ``x``, ``y``, ``edge_index``
(deduplicated, no self-loops, symmetrised by default, sorted by ``(dst, src)``), the three split
masks, optional ``edge_attr``, and ``info``: a :class:`GraphInfo` (name, task, metric, classes,
split, source) that the rest of the package reads with :func:`graph_info`.
"""

from spexphormer.data.api import describe, load_graph
from spexphormer.data.info import GraphInfo, graph_info, with_info
from spexphormer.data.named import list_datasets
from spexphormer.data.registry import DATASETS, DatasetSpec
from spexphormer.data.roots import resolve_root
from spexphormer.data.synthetic import planted_partition
from spexphormer.data.user_data import from_pyg
from spexphormer.data.validate import validate_graph

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "GraphInfo",
    "graph_info",
    "with_info",
    "describe",
    "from_pyg",
    "list_datasets",
    "load_graph",
    "planted_partition",
    "resolve_root",
    "validate_graph",
]
