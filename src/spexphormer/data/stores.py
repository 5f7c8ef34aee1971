r"""Stage 2's inputs behind PyG's remote-backend interfaces: :class:`FeatureStore` and :class:`GraphStore`.

Stage 2 reads three things: the node features of each batch's nodes, and (to sample the
neighbour tables) the augmented graph grouped by destination with every edge's type and
per-layer scores. It reads them through PyG's interfaces, which engines such as cuGraph-PyG /
WholeGraph or GraphLearn-for-PyTorch implement, so another store can back them:

* features of rows ``i``: ``features.get_tensor("node", "x", i)``, shape :math:`(|i|, F)`;
* edge types: ``features.get_tensor("edge", "type", None)``, :math:`(E,)`;
* per-layer scores: ``features.get_tensor("edge", "scores", None)``, :math:`(L, E)`;
* the graph grouped by destination: ``graph.get_edge_index(EDGE, "csc")``, ``(src [E], ptr [N + 1])``.

(:data:`EDGE` is ``("node", "attends", "node")``: destination ``v`` attends to the sources
``src[ptr[v]:ptr[v + 1]]``.) The default implementation, :class:`MappedFeatureStore` and
:class:`MappedGraphStore`, keeps the tensors it is given without copying them: under ``torchrun``
those are read-only memory maps of the machine's one copy
(:mod:`spexphormer.distributed.machine_share`, the scores folder of :mod:`spexphormer.scores`);
:meth:`MappedFeatureStore.from_folder` maps a folder of ``.npy`` files itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import FeatureStore, GraphStore
from torch_geometric.data.feature_store import TensorAttr
from torch_geometric.data.graph_store import EdgeAttr, EdgeLayout

__all__ = ["EDGE", "MappedFeatureStore", "MappedGraphStore", "as_feature_store", "node_rows"]

#: The augmented graph's one edge type: a destination attends to its in-edges' sources.
EDGE = ("node", "attends", "node")


def as_feature_store(x: Tensor | FeatureStore) -> FeatureStore:
    """``x`` itself if it is a store, else a :class:`MappedFeatureStore` over it as ``("node", "x")``."""
    return x if isinstance(x, FeatureStore) else MappedFeatureStore({("node", "x"): x})


def node_rows(store: FeatureStore, rows: Tensor, attr: str = "x") -> Tensor:
    """Rows ``rows`` of the node attribute ``attr``. Shapes: rows [B] -> [B, F]."""
    return store.get_tensor(group_name="node", attr_name=attr, index=rows)


class MappedFeatureStore(FeatureStore):
    r"""Named tensors, kept as given (no copy) and indexed on read.

    Args:
        tensors (dict, optional): ``{(group, name): tensor}``.
    """

    def __init__(self, tensors: dict[tuple[str, str], Tensor] | None = None) -> None:
        super().__init__()
        self._tensors: dict[tuple[str, str], Tensor] = dict(tensors or {})

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, group: str = "node") -> "MappedFeatureStore":
        """Every ``FOLDER/<name>.npy`` as attribute ``name`` of ``group``, memory-mapped read-only."""
        import warnings
        tensors = {}
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            for file in sorted(Path(folder).glob("*.npy")):
                tensors[(group, file.stem)] = torch.from_numpy(np.load(file, mmap_mode="r", allow_pickle=False))
        return cls(tensors)

    def _put_tensor(self, tensor: Any, attr: TensorAttr) -> bool:
        if attr.index is not None:
            raise ValueError("MappedFeatureStore stores whole tensors (index=None)")
        self._tensors[(attr.group_name, attr.attr_name)] = torch.as_tensor(tensor)
        return True

    def _get_tensor(self, attr: TensorAttr) -> Tensor | None:
        tensor = self._tensors.get((attr.group_name, attr.attr_name))
        if tensor is None or attr.index is None:
            return tensor
        return tensor[attr.index]

    def _remove_tensor(self, attr: TensorAttr) -> bool:
        return self._tensors.pop((attr.group_name, attr.attr_name), None) is not None

    def _get_tensor_size(self, attr: TensorAttr) -> tuple[int, ...] | None:
        tensor = self._tensors.get((attr.group_name, attr.attr_name))
        return None if tensor is None else tuple(tensor.shape)

    def get_all_tensor_attrs(self) -> list[TensorAttr]:
        return [TensorAttr(group, name) for group, name in self._tensors]


class MappedGraphStore(GraphStore):
    """Edge indices by edge type and layout, kept as given (no copy, no layout conversion)."""

    def __init__(self) -> None:
        super().__init__()
        self._edges: dict[tuple[Any, EdgeLayout], tuple[EdgeAttr, tuple[Tensor, Tensor]]] = {}

    @classmethod
    def csc(cls, src: Tensor, ptr: Tensor, num_nodes: int) -> "MappedGraphStore":
        """The augmented graph (:data:`EDGE`) grouped by destination. Shapes: src [E], ptr [N + 1]."""
        store = cls()
        store.put_edge_index((src, ptr), edge_type=EDGE, layout="csc", size=(num_nodes, num_nodes))
        return store

    def _put_edge_index(self, edge_index: tuple[Tensor, Tensor], edge_attr: EdgeAttr) -> bool:
        self._edges[(edge_attr.edge_type, edge_attr.layout)] = (edge_attr, edge_index)
        return True

    def _get_edge_index(self, edge_attr: EdgeAttr) -> tuple[Tensor, Tensor] | None:
        entry = self._edges.get((edge_attr.edge_type, edge_attr.layout))
        return None if entry is None else entry[1]

    def _remove_edge_index(self, edge_attr: EdgeAttr) -> bool:
        return self._edges.pop((edge_attr.edge_type, edge_attr.layout), None) is not None

    def get_all_edge_attrs(self) -> list[EdgeAttr]:
        return [attr for attr, _ in self._edges.values()]
