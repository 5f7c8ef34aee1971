"""The data contract beside the tensors: what a graph is for and where it came from.

Every loader returns a PyG ``Data`` whose one non-tensor attribute ``info`` is a
:class:`GraphInfo`; code outside ``spexphormer.data`` reads it through :func:`graph_info`, never
through loose attributes on the ``Data``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Optional

from torch_geometric.data import Data

from spexphormer.errors import DataError

__all__ = ["GraphInfo", "METRICS", "TASKS", "declared", "graph_info", "with_info"]

#: The prediction tasks the heads and losses know.
TASKS = ("multiclass", "binary", "multilabel")
#: The metrics results are reported in.
METRICS = ("accuracy", "rocauc")


@dataclass(frozen=True)
class GraphInfo:
    """What a loaded graph is for.

    Attributes:
        name: The graph's name in logs, run folders and result tables.
        task: ``"multiclass"``, ``"binary"`` or ``"multilabel"``.
        metric: How predictions are scored (``"accuracy"`` or ``"rocauc"``).
        num_classes: Classes (multiclass), 2 (binary) or labels (multilabel).
        split: The split in words, e.g. ``"official mask 1 of 10"``.
        source: How to load the same graph again (``dataset``, ``path``, ``split_index``,
            ``symmetrize``), recorded in checkpoints; ``None`` for a graph made in memory.
    """

    name: str
    task: str
    metric: str
    num_classes: int
    split: str
    source: Optional[dict] = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise DataError(f"{self.name}: unknown task {self.task!r}; tasks: {', '.join(TASKS)}")
        if self.metric not in METRICS:
            raise DataError(f"{self.name}: unknown metric {self.metric!r}; metrics: {', '.join(METRICS)}")


_LEGACY = ("name", "task", "metric", "num_classes", "split")


def graph_info(data: Data) -> GraphInfo:
    """The :class:`GraphInfo` of a graph from :func:`~spexphormer.data.load_graph`,
    :func:`~spexphormer.data.from_pyg` or :func:`~spexphormer.data.planted_partition`.

    A ``Data`` that carries the five loose attributes ``name``, ``task``, ``metric``,
    ``num_classes`` and ``split`` instead (as version 0.1 loaders made) is read too.

    Raises:
        DataError: The ``Data`` carries neither (pass it through ``from_pyg`` first).
    """
    info = getattr(data, "info", None)
    if isinstance(info, GraphInfo):
        return info
    loose: dict[str, Any] = {key: getattr(data, key, None) for key in _LEGACY}
    if all(value is not None for value in loose.values()):
        return GraphInfo(name=str(loose["name"]), task=loose["task"], metric=loose["metric"],
                         num_classes=int(loose["num_classes"]), split=str(loose["split"]),
                         source=getattr(data, "source", None))
    raise DataError("this Data says nothing about its task: prepare it with spexphormer.data.from_pyg(data) "
                    "(or load it with load_graph)")


def declared(data: Data, key: str) -> Any:
    """One field of the graph's info, or the loose attribute of a raw ``Data``, or ``None``
    (for validating a ``Data`` that is not prepared yet)."""
    info = getattr(data, "info", None)
    return getattr(info, key) if isinstance(info, GraphInfo) else getattr(data, key, None)


def with_info(data: Data, **changes: Any) -> Data:
    """Sets ``data.info`` to its :class:`GraphInfo` with ``changes`` applied; returns ``data``."""
    data.info = replace(graph_info(data), **changes)
    return data
