"""A user's in-memory PyG ``Data`` as a project graph (what :func:`load_graph` returns for files)."""

from __future__ import annotations

from pathlib import Path

from torch_geometric.data import Data

from spexphormer.data.files import MASK_KEYS, finish_graph
from spexphormer.data.validate import validate_graph
from spexphormer.errors import DataError

__all__ = ["from_pyg"]


def from_pyg(data: Data, name: str = "graph", split_index: int = 0, seed: int = 0,
             symmetrize: bool = True) -> Data:
    r"""Prepares a PyG ``Data`` for training, exactly as a saved ``.pt`` file would be.

    Args:
        data (Data): ``x`` :math:`(N, F)`, ``y`` :math:`(N,)` class ids (``-1`` = unlabelled)
            or :math:`(N, C)` 0/1 multilabel targets, ``edge_index`` :math:`(2, E)`; optional
            ``train_mask``/``val_mask``/``test_mask`` (all three, or none for a seeded 60/20/20
            split), ``edge_attr`` and ``num_classes``.
        name (str): The graph's name in logs and result tables. (default: ``"graph"``)
        split_index (int): Which mask when the masks hold several splits (``[N, S]``).
        seed (int): Seed of the random split when there are no masks.
        symmetrize (bool): Add the reverse of every edge. (default: :obj:`True`)

    Returns:
        Data: A new graph with deduplicated, loop-free, sorted edges, the three masks, and
        ``info`` (:class:`~spexphormer.data.GraphInfo`; the input is not changed).

    Raises:
        DataError: Missing ``x``/``y``/``edge_index``, or an invalid graph.
    """
    missing = [key for key in ("x", "y", "edge_index") if getattr(data, key, None) is None]
    if missing:
        raise DataError(f"{name}: the Data has no {missing[0]}")
    masks = {key: getattr(data, key, None) for key in MASK_KEYS["pyg"]}
    graph = finish_graph(Path(name), data.x, data.y, data.edge_index, masks, split_index, seed, symmetrize,
                    edge_attr=getattr(data, "edge_attr", None), num_classes=getattr(data, "num_classes", None))
    return validate_graph(graph)
